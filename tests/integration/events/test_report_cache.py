"""The evaluation-metrics cache, in-process and on Redis (a private key prefix): hits within
the TTL, a miss after it, after the tenant's next write, or when the version changes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tuneloop.events.report_cache import ReportCache
from tuneloop.observability.metrics import CACHE_STATS, PIPELINE_CACHE_HIT_RATE


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["process", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "process":
        yield None
        return
    url = os.environ.get("TUNELOOP_TEST_REDIS_URL")
    if not url:
        pytest.skip("Redis tests need TUNELOOP_TEST_REDIS_URL; set it to run them (CI does)")
    import redis

    client = redis.Redis.from_url(url)
    yield client
    client.close()


def test_reports_are_reused_until_a_write_or_a_status_change(backend: Any) -> None:
    prefix = f"tuneloop-test:{uuid.uuid4().hex}:cache:"
    ticks = Ticks()
    cache = ReportCache(redis=backend, ttl=300, prefix=prefix, clock=ticks)
    computed: list[int] = []

    def compute() -> dict[str, Any]:
        computed.append(1)
        return {"n": len(computed), "p_value": float("nan")}

    hits_before = CACHE_STATS.hits
    try:
        assert cache.get_or_compute("acme", "ab-1", "running", compute)["n"] == 1
        assert cache.get_or_compute("acme", "ab-1", "running", compute)["n"] == 1  # a hit
        assert CACHE_STATS.hits == hits_before + 1
        assert PIPELINE_CACHE_HIT_RATE._value.get() == CACHE_STATS.hit_rate()
        cache.invalidate_tenant("globex")  # another tenant's write changes nothing here
        assert cache.get_or_compute("acme", "ab-1", "running", compute)["n"] == 1
        cache.invalidate_tenant("acme")  # the consumer wrote acme's events
        assert cache.get_or_compute("acme", "ab-1", "running", compute)["n"] == 2
        assert cache.get_or_compute("acme", "ab-1", "stopped", compute)["n"] == 3
        if backend is None:  # Redis keeps its own time: its TTL is not driven by the clock
            ticks.now += 301
            assert cache.get_or_compute("acme", "ab-1", "stopped", compute)["n"] == 4
    finally:
        if backend is not None:
            for key in backend.scan_iter(match=f"{prefix}*"):
                backend.delete(key)
