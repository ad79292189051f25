"""What the app holds while it runs (engine, Redis, rate limiter) and the hooks others plug in.

``Resources`` are opened in the app's lifespan and closed at shutdown; ``ServiceHooks`` exist
from ``create_app`` on, so code that builds on the app can register readiness checks (for
example "serving models are warm") and circuit-breaker state sources before it starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from sqlalchemy import Engine

from tuneloop.api.principals import KeyCache
from tuneloop.api.ratelimit import RateLimiter, limiter_for
from tuneloop.app.events import StartedArms
from tuneloop.config import Settings
from tuneloop.domain.event_stream import EventStream
from tuneloop.errors import ConfigurationError
from tuneloop.events.consumer import EventConsumer
from tuneloop.events.factory import consumer_for, stream_for
from tuneloop.events.report_cache import ReportCache
from tuneloop.resilience.registry import BREAKER_NAMES, breaker_state
from tuneloop.wiring import Container, build_container, clock_for, engine_for

log = logging.getLogger(__name__)


def _process_breaker_states() -> dict[str, Callable[[], str]]:
    """Every process breaker (``openai``, ``mlflow``), read live at each /health and scrape."""
    return {name: partial(breaker_state, name) for name in BREAKER_NAMES}


@dataclass
class ServiceHooks:
    """Extension points: readiness checks and circuit-breaker state sources, by name."""

    readiness: dict[str, Callable[[], bool]] = field(default_factory=dict)
    breakers: dict[str, Callable[[], str]] = field(default_factory=_process_breaker_states)


@dataclass
class Resources:
    settings: Settings
    engine: Engine
    redis: Any | None
    limiter: RateLimiter
    keys: KeyCache  # verified API keys, for api.key_cache_seconds
    container: Container  # the composition root the application layer works with
    events: EventStream  # where POST /v1/events appends
    reports: ReportCache  # evaluation metrics, 5 minutes or until the consumer writes
    consumer: EventConsumer | None = None  # the in-process consumer (events.consume_in_serve)
    migrated: bool = False
    # /v1/route and /v1/chat/completions: generation traffic, api.serving_rate_limit_per_minute
    serving_limiter: RateLimiter | None = None
    # /v1/events: the arms of started experiments, so the edge need not read them per request
    started_arms: StartedArms = field(default_factory=StartedArms)


def redis_client_for(settings: Settings) -> Any | None:
    """A pooled redis-py client (20 connections, keepalive, health check every 30 s), or None."""
    if not settings.redis.url:
        return None
    import redis

    try:
        return redis.Redis.from_url(
            settings.redis.url,
            max_connections=20,
            socket_keepalive=True,
            health_check_interval=30,
            socket_connect_timeout=5,
            socket_timeout=5,
        )
    except ValueError as exc:
        raise ConfigurationError(
            "the Redis URL is not valid (redis://, rediss://, unix://)"
        ) from exc


def open_resources(settings: Settings) -> Resources:
    """Migrate and connect; raises (and the app does not start) when the database is unusable."""
    engine = engine_for(settings)  # applies migrations to all heads
    client = redis_client_for(settings)
    limiter = limiter_for(
        settings.api.rate_limit_per_minute, redis=client, prefix=settings.api.rate_limit_prefix
    )
    serving_limiter = limiter_for(
        settings.api.serving_rate_limit_per_minute,
        redis=client,
        prefix=f"{settings.api.rate_limit_prefix}serving:",
    )
    stream = stream_for(settings, engine, client)
    reports = ReportCache(redis=client)
    consumer = None
    if settings.events.consume_in_serve:
        consumer = consumer_for(settings, engine, stream, on_written=reports.invalidate_tenant)
        consumer.start()
    return Resources(
        settings=settings,
        engine=engine,
        redis=client,
        limiter=limiter,
        keys=KeyCache(settings.api.key_cache_seconds),
        container=build_container(settings, engine=engine, clock=clock_for(settings)),
        events=stream,
        reports=reports,
        consumer=consumer,
        migrated=True,
        serving_limiter=serving_limiter,
    )


def close_resources(resources: Resources) -> None:
    if resources.consumer is not None:
        resources.consumer.stop()
    resources.events.close()
    if resources.redis is not None:
        resources.redis.close()
    resources.engine.dispose()


def resources_of(app: FastAPI) -> Resources:
    resources: Resources | None = getattr(app.state, "resources", None)  # set while started
    if resources is None:
        raise RuntimeError("the app has not started: use it inside its lifespan")
    return resources


def hooks_of(app: FastAPI) -> ServiceHooks:
    hooks: ServiceHooks = app.state.hooks
    return hooks


async def get_resources(request: Request) -> Resources:
    """FastAPI dependency: the running app's resources."""
    return resources_of(request.app)


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def add_readiness_check(app: FastAPI, name: str, check: Callable[[], bool]) -> None:
    """/health/ready answers 503 until ``check()`` is true (e.g. serving models warm)."""
    hooks_of(app).readiness[name] = check


def set_breaker_source(app: FastAPI, name: str, state: Callable[[], str]) -> None:
    """Report breaker ``name`` (``openai``, ``mlflow``) as ``state()`` in /health and /metrics."""
    hooks_of(app).breakers[name] = state
