"""Event stream fixtures: each test's stream on the app database or on a private Redis key."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.domain.event_stream import EventStream
from tuneloop.events.factory import stream_for

REDIS_URL = os.environ.get("TUNELOOP_TEST_REDIS_URL")


@pytest.fixture(params=["database", "redis"])
def stream_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "redis" and not REDIS_URL:
        if os.environ.get("TUNELOOP_REQUIRE_SERVICES") == "1":
            pytest.fail("TUNELOOP_REQUIRE_SERVICES=1 but TUNELOOP_TEST_REDIS_URL is not set")
        pytest.skip("Redis tests need TUNELOOP_TEST_REDIS_URL; set it to run them (CI does)")
    return str(request.param)


@pytest.fixture
def redis_client(stream_kind: str) -> Iterator[Any]:
    if stream_kind != "redis":
        yield None
        return
    import redis

    client = redis.Redis.from_url(REDIS_URL)  # type: ignore[arg-type]
    yield client
    client.close()


@pytest.fixture
def stream_key(redis_client: Any) -> Iterator[str]:
    """A stream key private to this test (never FLUSHDB: the Redis is shared); removed after."""
    key = f"tuneloop-test:{uuid.uuid4().hex}:events"
    yield key
    if redis_client is not None:
        for found in redis_client.scan_iter(match=f"{key}*"):
            redis_client.delete(found)


@pytest.fixture
def make_stream(
    stream_kind: str, settings: Settings, engine: Engine, redis_client: Any, stream_key: str
) -> Iterator[Callable[..., EventStream]]:
    """Builds this test's stream (a new handle each call, as another process would have):
    the one ``tuneloop consume events`` opens for these settings."""
    opened: list[EventStream] = []

    def build(*, claim_idle_seconds: float = 60.0) -> EventStream:
        if stream_kind == "redis":
            from tuneloop.events.redis_stream import RedisEventStream

            return RedisEventStream(
                redis_client,
                key=stream_key,
                group="test-consumers",
                claim_idle_seconds=claim_idle_seconds,
            )
        events = settings.events.model_copy(update={"claim_idle_seconds": claim_idle_seconds})
        stream = stream_for(settings.model_copy(update={"events": events}), engine, None)
        opened.append(stream)
        return stream

    yield build
    for stream in opened:
        stream.close()
