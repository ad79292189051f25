"""ASGI middleware: request context (id, timing, log line, metrics) and the body size limit.

Both are plain ASGI (no BaseHTTPMiddleware): they stream, and they see every answer,
including the 500 for an unhandled exception, which is answered here in the JSON error
shape and logged without a traceback, so neither uvicorn nor a client ever sees one.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tuneloop.api.errors import error_response
from tuneloop.observability.metrics import observe_request

log = logging.getLogger("tuneloop.api.request")
CONTEXT_KEY = "tuneloop.context"
REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET_PATHS = ("/health", "/metrics")  # probes and scrapes log at DEBUG


@dataclass
class RequestContext:
    request_id: str
    tenant: str | None = None


def context_of(request: Request) -> RequestContext | None:
    context = request.scope.get(CONTEXT_KEY)
    return context if isinstance(context, RequestContext) else None


def _request_id(scope: Scope) -> str:
    given = Headers(scope=scope).get(REQUEST_ID_HEADER)
    return given if given and _VALID_REQUEST_ID.match(given) else _new_request_id()


# A random prefix per process and a counter: unique like a uuid4 (32 hex digits), without a
# read from the kernel's random source on every request (5% of a /v1/events answer).
# A forked worker (gunicorn --preload) draws a prefix of its own.
_PREFIX = uuid.uuid4().hex[:16]
_COUNTER = itertools.count()


def _new_prefix() -> None:
    global _PREFIX, _COUNTER
    _PREFIX, _COUNTER = uuid.uuid4().hex[:16], itertools.count()


os.register_at_fork(after_in_child=_new_prefix)


def _new_request_id() -> str:
    return f"{_PREFIX}{next(_COUNTER) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def route_template(scope: Scope) -> str:
    """The matched route's template (``/datasets/{dataset_id}``), never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    # FastAPI records only its own APIRoutes in the scope; find plain ones (/docs) here.
    for route in getattr(scope.get("app"), "routes", ()):
        if isinstance(route, Route) and route.matches(scope)[0] is Match.FULL:
            return route.path
    return "<unmatched>"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = RequestContext(request_id=_request_id(scope))
        scope[CONTEXT_KEY] = context
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = context.request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            status = 500
            log.error("unhandled error", exc_info=exc, extra={"request_id": context.request_id})
            if not response_started:
                response = error_response(
                    500, "internal", "internal server error", {"request_id": context.request_id}
                )
                await response(scope, receive, send_with_id)
        finally:
            self._record(scope, context, status, time.perf_counter() - started)

    @staticmethod
    def _record(scope: Scope, context: RequestContext, status: int, seconds: float) -> None:
        route = route_template(scope)
        observe_request(scope["method"], route, status, seconds)
        quiet = scope["path"].startswith(_QUIET_PATHS) and status < 400
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "%s %s %s",
            scope["method"],
            route,
            status,
            extra={
                "request_id": context.request_id,
                "tenant": context.tenant,
                "method": scope["method"],
                "route": route,
                "status": status,
                "latency_ms": round(seconds * 1000, 2),
            },
        )


class BodyLimitMiddleware:
    """413 for a body over ``max_bytes``: at once from Content-Length, or while it streams."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large()(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises HTTPExceptions from body reading: the handler answers.
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, limited_receive, send)

    def _message(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"

    def _too_large(self) -> ASGIApp:
        return error_response(
            413, "payload_too_large", self._message(), {"max_bytes": self.max_bytes}
        )
