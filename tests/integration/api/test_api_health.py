"""``/health``, ``/health/live``, ``/health/ready``: the documented shape, 503s, hooks, ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_helpers import with_api
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tuneloop.api.app import create_app
from tuneloop.api.resources import add_readiness_check, set_breaker_source
from tuneloop.config import Settings
from tuneloop.store import leases

POOLS = {
    "db_connections_active",
    "db_connections_idle",
    "redis_connections_active",
    "redis_connections_idle",
}
PERFORMANCE = {"avg_response_time_ms", "cache_hit_rate", "memory_usage_mb", "cpu_usage_percent"}


def with_redis(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"redis": settings.redis.model_copy(update={"url": url})})


def test_health_has_the_documented_shape(client: TestClient) -> None:
    client.get("/health/live")
    response = client.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "healthy"
    assert isinstance(body["timestamp"], float)
    assert body["components"] == {
        "database": "healthy",
        "mlflow": "not_configured",
        "openai_circuit_breaker": "CLOSED",
        "mlflow_circuit_breaker": "CLOSED",
        "worker": "no_leader",
    }
    assert body["worker"] is None
    assert set(body["connection_pools"]) == POOLS
    assert set(body["performance_metrics"]) == PERFORMANCE
    assert body["connection_pools"]["db_connections_idle"] >= 1
    assert body["performance_metrics"]["memory_usage_mb"] > 10
    assert body["performance_metrics"]["avg_response_time_ms"] > 0


def test_health_shows_the_leading_worker_and_its_last_tick(client: TestClient, db: Engine) -> None:
    now = datetime.now(UTC)
    assert leases.try_acquire(db, "host-a:1:abc", now=now, ttl=timedelta(seconds=60))
    leases.record_tick(db, "host-a:1:abc", at=now, summary={"leader": True})
    body = client.get("/health").json()
    assert body["status"] == "healthy"
    assert body["components"]["worker"] == "leading"
    assert body["worker"]["leader"] == "host-a:1:abc"
    assert datetime.fromisoformat(body["worker"]["last_tick_at"]) == now
    leases.release(db, "host-a:1:abc", now=datetime.now(UTC))
    body = client.get("/health").json()
    assert body["components"]["worker"] == "no_leader"
    assert body["status"] == "healthy"  # the worker is optional


@pytest.mark.redis
def test_health_reports_redis_when_configured(sqlite_settings: Settings, redis_url: str) -> None:
    with TestClient(create_app(with_redis(sqlite_settings, redis_url))) as client:
        body = client.get("/health").json()
    assert body["components"]["redis"] == "healthy"
    assert body["connection_pools"]["redis_connections_idle"] >= 1


def test_a_required_component_down_is_a_503(sqlite_settings: Settings) -> None:
    # Nothing listens on port 1 of the loopback: Redis is configured but down.
    with TestClient(create_app(with_redis(sqlite_settings, "redis://127.0.0.1:1/0"))) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    assert response.json()["components"]["redis"] == "unhealthy"


def test_an_open_breaker_degrades_but_does_not_fail(sqlite_settings: Settings) -> None:
    app = create_app(sqlite_settings)
    set_breaker_source(app, "openai", lambda: "OPEN")
    with TestClient(app) as client:
        body = client.get("/health").json()
    assert body["status"] == "degraded"
    assert body["components"]["openai_circuit_breaker"] == "OPEN"


def test_ready_waits_for_every_readiness_hook(sqlite_settings: Settings) -> None:
    app = create_app(sqlite_settings)
    warm = {"done": False}
    add_readiness_check(app, "models_warm", lambda: warm["done"])
    add_readiness_check(app, "flaky", lambda: True)
    with TestClient(app) as client:
        assert client.get("/health/live").json() == {"status": "alive"}
        waiting = client.get("/health/ready")
        assert waiting.status_code == 503
        assert waiting.json() == {
            "status": "not_ready",
            "checks": {
                "migrations": True,
                "database": True,
                "serving_models": True,  # nothing is served locally: nothing to warm
                "models_warm": False,
                "flaky": True,
            },
        }
        warm["done"] = True
        assert client.get("/health/ready").json()["status"] == "ready"


def test_a_readiness_hook_that_raises_means_not_ready(sqlite_settings: Settings) -> None:
    app = create_app(sqlite_settings)
    add_readiness_check(app, "broken", lambda: 1 / 0 > 0)
    with TestClient(app) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["broken"] is False


def test_request_ids_are_propagated_or_made(sqlite_settings: Settings) -> None:
    with TestClient(create_app(with_api(sqlite_settings))) as client:
        given = client.get("/health/live", headers={"X-Request-ID": "abc-123"})
        assert given.headers["X-Request-ID"] == "abc-123"
        unsafe = client.get("/health/live", headers={"X-Request-ID": "no spaces\tor tabs"})
        assert len(unsafe.headers["X-Request-ID"]) == 32
        assert " " not in unsafe.headers["X-Request-ID"]


def _sample(text: str, name: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(f"{name} "))
    return float(line.split()[1])


def test_metrics_show_the_leader_and_its_last_tick_from_the_lease(
    client: TestClient, db: Engine
) -> None:
    """The worker may run elsewhere: the API's scrape reads its lease row."""
    assert _sample(client.get("/metrics").text, "tuneloop_worker_is_leader") == 0
    now = datetime.now(UTC).replace(microsecond=0)
    assert leases.try_acquire(db, "host-b:2:def", now=now, ttl=timedelta(seconds=60))
    leases.record_tick(db, "host-b:2:def", at=now, summary={"leader": True})
    text = client.get("/metrics").text
    assert _sample(text, "tuneloop_worker_is_leader") == 1
    assert _sample(text, "tuneloop_worker_last_tick_timestamp_seconds") == now.timestamp()
    leases.release(db, "host-b:2:def", now=datetime.now(UTC))
    assert _sample(client.get("/metrics").text, "tuneloop_worker_is_leader") == 0
