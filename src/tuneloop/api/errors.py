"""Error answers: one JSON shape, ``{"error": {"type", "message", "details"}}``, for every failure.

The app factory hands :func:`install_error_handlers` its table from tuneloop errors to HTTP
statuses. Messages pass through the redactor; tracebacks never leave the process (the log
gets the exception's type and where it was raised, see ``observability.logging``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from tuneloop.errors import ExternalServiceError, InvalidInputError, TuneloopError
from tuneloop.observability.logging import Redactor

log = logging.getLogger(__name__)

# Error types for answers that do not come from a TuneloopError.
HTTP_ERROR_TYPES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}

ErrorTable = Mapping[type[TuneloopError], tuple[int, str]]


def error_response(
    status: int,
    kind: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"type": kind, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def status_for(error: TuneloopError, table: ErrorTable) -> tuple[int, str]:
    for kind, answer in table.items():
        if isinstance(error, kind):
            return answer
    return 500, "internal"


def allowed_methods(request: Request) -> str:
    """Every method the app answers at this path, from its OpenAPI paths (for a 405's
    ``Allow``; Starlette's names only the first matching route's)."""
    table = getattr(request.app.state, "allowed_methods", None)
    if table is None:
        table = [
            (compile_path(path)[0], {method.upper() for method in operations})
            for path, operations in request.app.openapi().get("paths", {}).items()
        ]
        request.app.state.allowed_methods = table
    methods: set[str] = set()
    for pattern, found in table:
        if pattern.match(request.url.path):
            methods |= found
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI, table: ErrorTable, redact: Redactor) -> None:
    """Answer TuneloopErrors by ``table``, and HTTP and validation errors in the same shape."""

    async def tuneloop_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TuneloopError)
        status, kind = status_for(exc, table)
        if status >= 500:
            log.error(
                "request failed: %s", kind, exc_info=exc, extra={"error_type": type(exc).__name__}
            )
        return error_response(status, kind, redact(str(exc)), _details_of(exc))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        kind = HTTP_ERROR_TYPES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names only the first route's methods
            headers["Allow"] = allowed_methods(request)
        return error_response(exc.status_code, kind, redact(message), headers=headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # Only loc, msg and type: the rejected input itself may hold secrets or be huge.
        errors = [
            {
                "loc": list(e.get("loc", ())),
                "msg": redact(str(e.get("msg", ""))),
                "type": e.get("type"),
            }
            for e in exc.errors()
        ]
        noun = "problem" if len(errors) == 1 else "problems"
        message = f"the request is invalid ({len(errors)} {noun}): " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:3]
        )
        return error_response(422, "invalid_input", message, {"errors": errors})

    app.add_exception_handler(TuneloopError, tuneloop_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


def _details_of(error: TuneloopError) -> dict[str, Any]:
    if isinstance(error, InvalidInputError) and error.problems:
        return {"problems": [{"where": p.where, "reason": p.reason} for p in error.problems[:100]]}
    if isinstance(error, ExternalServiceError):
        return {"service": error.service}
    return {}
