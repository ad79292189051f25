"""Who a dashboard request acts for: its session, its role, its CSRF check, its scope.

Page handlers depend on ``SessionDep`` (no session: redirect to login); action handlers also
call ``authorize_form`` (operator role, then the form's CSRF token). A viewer's forged POST
is refused with 403 before anything runs; a missing or wrong CSRF token, 403 as well.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from tuneloop.api.resources import hooks_of, resources_of
from tuneloop.app.background import RunWorkers
from tuneloop.app.keys import Role, key_is_active
from tuneloop.dashboard.rendering import LoginRequired
from tuneloop.dashboard.session import (
    SESSION_COOKIE,
    Session,
    decode_session,
    session_secret,
    tokens_match,
)
from tuneloop.dashboard.views import Scope

MAX_FORM_BYTES = 16 * 1024


def secret_of(request: Request) -> str:
    """The session secret: configured, or the workspace's (read once per app)."""
    secret: str | None = getattr(request.app.state, "dashboard_secret", None)
    if secret is None:
        secret = session_secret(resources_of(request.app).settings)
        request.app.state.dashboard_secret = secret
    return secret


async def current_session(request: Request) -> Session:
    """The request's valid session, or LoginRequired (the route redirects to login).

    A session made with an API key lasts only while that key does: revoking the key (or a
    key row that no longer matches) ends every dashboard session opened with it.
    """
    session = decode_session(request.cookies.get(SESSION_COOKIE), secret_of(request))
    if session is None:
        raise LoginRequired()
    p = session.principal
    if p.method == "api_key":
        engine = resources_of(request.app).engine
        active = await run_in_threadpool(
            key_is_active, engine, p.tenant_id, p.subject, p.role.value
        )
        if not active:
            raise LoginRequired()
    request.state.dashboard_session = session
    return session


SessionDep = Annotated[Session, Depends(current_session)]


def scope_of(request: Request, session: Session) -> Scope:
    workers: RunWorkers | None = getattr(request.app.state, "run_workers", None)
    if workers is None:
        raise RuntimeError("the app has not started: use it inside its lifespan")
    return Scope(
        resources=resources_of(request.app),
        workers=workers,
        hooks=hooks_of(request.app),
        tenant_id=session.principal.tenant_id,
    )


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the last value of each), at most MAX_FORM_BYTES."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(413, "the form is too large")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


async def authorize_form(request: Request, session: Session, role: Role) -> dict[str, str]:
    """The form, once the session's role includes ``role`` and its CSRF token matches."""
    if not session.principal.role.includes(role):
        raise HTTPException(
            403, f"this needs the {role.value} role; you are {session.principal.role.value}"
        )
    form = await read_form(request)
    if not tokens_match(session.csrf, form.get("csrf_token")):
        raise HTTPException(403, "the form's CSRF token is missing or wrong; reload the page")
    return form
