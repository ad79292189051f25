"""How dashboard pages are rendered: the Jinja2 environment, its filters, and error pages.

Templates live in ``dashboard/templates`` (autoescaped). Times are written as ``<time>``
elements in UTC; the dashboard's script shows them in the browser's time zone. Any failure
inside a dashboard route (``HtmlErrorRoute``) answers an HTML page with the same status the
REST API would give, never the API's JSON: a missing or foreign id is a 404 page.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.exceptions import HTTPException

from tuneloop.api.errors import ErrorTable, status_for
from tuneloop.errors import TuneloopError

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


class LoginRequired(Exception):  # noqa: N818 - a signal, not an error
    """No valid session: the browser is sent to the login page."""


def _time(value: datetime | str | None) -> Markup:
    if value is None:
        return Markup('<span class="muted">—</span>')
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    iso = value.astimezone(UTC).isoformat(timespec="seconds")
    text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return Markup('<time datetime="{}">{}</time>').format(iso, text)


def _percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f} %"


def _number(value: float | None, unit: str = "", digits: int = 3) -> str:
    if value is None:
        return "—"
    text = f"{value:,.{digits}g}" if isinstance(value, float) else f"{value:,}"
    return f"{text} {unit}".strip()


environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(time=_time, percent=_percent, number=_number)
environment.globals["svg"] = Markup  # charts are SVG this package drew (charts.py)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    session = getattr(request.state, "dashboard_session", None)
    page = environment.get_template(template).render(
        request=request, session=session, notice=request.query_params.get("notice"), **context
    )
    return HTMLResponse(page, status_code=status_code)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return render(request, "error.html", status, status=status, title=title, message=message)


def _table(request: Request) -> ErrorTable:
    table: ErrorTable = getattr(request.app.state, "dashboard_errors", {})
    return table


class HtmlErrorRoute(APIRoute):
    """A route whose failures are HTML pages (and a missing session a redirect to login)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                target = quote(request.url.path, safe="/")
                return RedirectResponse(f"/ui/login?next={target}", status_code=303)
            except TuneloopError as exc:
                status, _ = status_for(exc, _table(request))
                return error_page(request, status, str(exc))
            except HTTPException as exc:
                message = exc.detail if isinstance(exc.detail, str) else ""
                return error_page(request, exc.status_code, message)
            except RequestValidationError as exc:
                problems = "; ".join(str(e.get("msg", "")) for e in exc.errors()[:3])
                return error_page(request, 422, f"the request is invalid: {problems}")

        return route
