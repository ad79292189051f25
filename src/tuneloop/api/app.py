"""The app factory: ``create_app(settings)`` wires settings, resources, middleware and routers.

Startup (the lifespan) configures logging, migrates the database, connects Redis and builds
the rate limiter; shutdown closes them. A new router goes into the tuple in ``create_app``;
its routes ask for a role with ``tuneloop.api.auth.Viewer``/``Operator``/``Admin`` (which
authenticate, rate-limit and authorize) and scope every query by ``principal.tenant_id``;
``ResourcesDep`` gives the engine, Redis client and settings. Routers declare
``responses=AUTHENTICATED_RESPONSES`` (and ``BODY_RESPONSES`` on routes with a body).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from tuneloop import __version__
from tuneloop.api.auth import document_security
from tuneloop.api.errors import ErrorTable, install_error_handlers
from tuneloop.api.middleware import REQUEST_ID_HEADER, BodyLimitMiddleware, RequestContextMiddleware
from tuneloop.api.resources import (
    ServiceHooks,
    add_readiness_check,
    close_resources,
    open_resources,
)
from tuneloop.api.routers import (
    datasets,
    deployment,
    evaluation,
    events,
    fine_tuning,
    health,
    keys,
    metrics,
    models,
    posts,
    serving,
)
from tuneloop.config import Settings, get_settings
from tuneloop.dashboard import install_dashboard
from tuneloop.domain.tenants import DEFAULT_TENANT
from tuneloop.errors import (
    ConfigurationError,
    ConflictError,
    ExternalServiceError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    TrainingError,
)
from tuneloop.observability.logging import Redactor, configure_logging, secrets_of
from tuneloop.serving.service import Serving

log = logging.getLogger(__name__)

# The one table from tuneloop's error tree to HTTP (the CLI's exit codes live in cli/main.py).
ERROR_STATUS: ErrorTable = {
    NotFoundError: (404, "not_found"),
    ConflictError: (409, "conflict"),
    InvalidStateError: (409, "invalid_state"),
    InvalidInputError: (422, "invalid_input"),
    ConfigurationError: (500, "configuration"),
    ExternalServiceError: (503, "external_service"),
    TrainingError: (500, "training"),
}

DESCRIPTION = """
Closes the loop from engagement data to a better model.

Authenticate with an API key (`Authorization: Bearer tl_...` or `X-API-Key: tl_...`) or an
HS256 JWT (`Authorization: Bearer <jwt>`, claims `sub`, `tenant`, `role`, `exp`). Every
request acts for the credential's tenant. Errors answer `{"error": {"type", "message", "details"}}`.
"""


def create_app(settings: Settings) -> FastAPI:
    """A ready-to-serve app for ``settings``; nothing connects until it starts."""
    app = FastAPI(
        title="tuneloop",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan(settings),
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.hooks = ServiceHooks()
    install_error_handlers(app, ERROR_STATUS, Redactor(secrets_of(settings)))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER, "Retry-After"],
        )
    # Starlette tries routes in order: the hot paths (the proxy, /v1/route, /v1/events)
    # come first so each of their requests is matched at once, not after ~40 misses.
    for router in (
        serving.router,
        events.router,
        health.router,
        metrics.router,
        posts.router,
        datasets.router,
        keys.router,
        fine_tuning.router,
        models.router,
        evaluation.router,
        deployment.router,
    ):
        app.include_router(router)
    install_dashboard(app, ERROR_STATUS)
    document_security(app)
    add_readiness_check(app, "serving_models", lambda: _serving_ready(app))
    return app


def _serving_ready(app: FastAPI) -> bool:
    """The locally served models are loaded (true when there are none to load)."""
    found: Serving | None = getattr(app.state, "serving", None)
    return found is not None and found.local.ready


def _lifespan(settings: Settings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings)
        if settings.api.auth_disabled:
            log.warning(
                "AUTHENTICATION IS DISABLED (api.auth_disabled): every request acts as admin "
                "of tenant %r. Use this only on a local machine.",
                DEFAULT_TENANT,
            )
        resources = await run_in_threadpool(open_resources, settings)
        outer = getattr(app.state, "resources", None)  # a test harness may start it twice
        app.state.resources = resources
        outer_serving = getattr(app.state, "serving", None)
        try:  # a start that fails half-way still closes what it opened (threads, pools)
            app.state.serving = service = Serving(
                settings, resources.engine, clock=resources.container.clock
            )
            try:
                service.local.start(await run_in_threadpool(service.models_to_warm))
                log.info("tuneloop API started", extra={"event": "startup"})
                yield
            finally:
                await service.aclose()
                await run_in_threadpool(service.close_recorder)
        finally:
            app.state.serving = outer_serving
            app.state.resources = outer
            await run_in_threadpool(close_resources, resources)
            log.info("tuneloop API stopped", extra={"event": "shutdown"})

    return lifespan


def app_from_env() -> FastAPI:
    """Uvicorn's factory (``tuneloop serve``): settings from the environment and files."""
    return create_app(get_settings())
