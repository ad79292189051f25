"""Health checks: component probes, connection pool sizes, process performance, readiness.

The database is always required; Redis is required when configured; MLflow is optional
(down means "degraded", not unavailable). Circuit-breaker states come from callables that
the resilience code registers; readiness checks likewise (for example "models warm").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import psutil
from sqlalchemy import Engine, text

from tuneloop.observability.metrics import CACHE_STATS, RECENT_LATENCY

log = logging.getLogger(__name__)
Status = Literal["healthy", "degraded", "unhealthy"]
_PROCESS = psutil.Process()
_PROCESS.cpu_percent(None)  # the first reading is always 0.0; prime it at import


@dataclass(frozen=True)
class HealthReport:
    status: Status
    timestamp: float
    components: dict[str, str]
    connection_pools: dict[str, int]
    performance_metrics: dict[str, float | None]
    worker: dict[str, Any] | None = None
    # Each serving upstream's breaker: state, calls and failures in its window, retry_after_s.
    upstream_circuit_breakers: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadinessReport:
    ready: bool
    checks: dict[str, bool] = field(default_factory=dict)


def database_ok(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception as exc:  # any failure means "down"; say which kind, not the details
        log.warning("database health check failed", extra={"error_type": type(exc).__name__})
        return False


def redis_ok(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception as exc:
        log.warning("redis health check failed", extra={"error_type": type(exc).__name__})
        return False


def mlflow_status(tracking_uri: str, *, timeout: float = 2.0) -> str:
    """``reachable``/``unreachable`` for an MLflow server, ``local`` for a file or SQLite
    store, ``not_configured`` when no tracking URI was set."""
    if not tracking_uri:
        return "not_configured"
    if not tracking_uri.startswith(("http://", "https://")):
        return "local"
    try:
        response = httpx.get(f"{tracking_uri.rstrip('/')}/health", timeout=timeout)
        return "reachable" if response.status_code == 200 else "unreachable"
    except httpx.HTTPError:
        return "unreachable"


def db_pool_sizes(engine: Engine) -> tuple[int, int]:
    """(checked out, idle) connections of the engine's pool; (0, 0) for pools that keep none."""
    pool = engine.pool
    checkedout = getattr(pool, "checkedout", None)
    checkedin = getattr(pool, "checkedin", None)
    if checkedout is None or checkedin is None:
        return 0, 0
    return int(checkedout()), int(checkedin())


def redis_pool_sizes(client: Any) -> tuple[int, int]:
    """(in use, idle) connections of a redis-py client's pool."""
    pool = client.connection_pool
    in_use = getattr(pool, "_get_in_use_connections", None)
    free = getattr(pool, "_get_free_connections", None)
    if in_use is not None and free is not None:  # redis-py >= 6
        return len(list(in_use())), len(list(free()))
    return len(getattr(pool, "_in_use_connections", ())), len(
        getattr(pool, "_available_connections", ())
    )


def pool_sizes(engine: Engine, redis: Any | None) -> dict[str, int]:
    db_active, db_idle = db_pool_sizes(engine)
    redis_active, redis_idle = redis_pool_sizes(redis) if redis is not None else (0, 0)
    return {
        "db_connections_active": db_active,
        "db_connections_idle": db_idle,
        "redis_connections_active": redis_active,
        "redis_connections_idle": redis_idle,
    }


def performance() -> dict[str, float | None]:
    return {
        "avg_response_time_ms": RECENT_LATENCY.average_ms(),
        "cache_hit_rate": CACHE_STATS.hit_rate(),  # None until a cache has been asked
        "memory_usage_mb": round(_PROCESS.memory_info().rss / 2**20, 1),
        "cpu_usage_percent": _PROCESS.cpu_percent(None),
    }


def worker_status(engine: Engine) -> tuple[str, dict[str, Any] | None]:
    """``leading`` while a worker holds an unexpired lease, else ``no_leader``; with the
    leader, its lease's end and its last tick. The worker is optional: it never makes the
    service unhealthy (``tuneloop serve --no-worker`` with no ``tuneloop worker`` is allowed).
    """
    from datetime import UTC, datetime

    from tuneloop.store.leases import read_lease

    try:
        lease = read_lease(engine)
    except Exception as exc:  # the database check reports the outage itself
        log.warning("worker lease read failed", extra={"error_type": type(exc).__name__})
        return "unknown", None
    if lease is None:
        return "no_leader", None
    detail = {
        "leader": lease.holder,
        "lease_expires_at": lease.expires_at.isoformat(),
        "last_tick_at": None if lease.last_tick_at is None else lease.last_tick_at.isoformat(),
    }
    return ("leading" if lease.expires_at > datetime.now(UTC) else "no_leader"), detail


def health_report(
    *,
    engine: Engine,
    redis: Any | None,
    mlflow_uri: str,
    breakers: Mapping[str, Callable[[], str]],
    upstreams: Mapping[str, Mapping[str, Any]] | None = None,
) -> HealthReport:
    components = {"database": "healthy" if database_ok(engine) else "unhealthy"}
    if redis is not None:
        components["redis"] = "healthy" if redis_ok(redis) else "unhealthy"
    components["mlflow"] = mlflow_status(mlflow_uri)
    for name, state in breakers.items():
        components[f"{name}_circuit_breaker"] = state()
    components["worker"], worker = (
        worker_status(engine) if components["database"] == "healthy" else ("unknown", None)
    )
    upstream_states = {name: dict(snapshot) for name, snapshot in (upstreams or {}).items()}
    status = _overall(components)
    if status == "healthy" and any(b["state"] == "OPEN" for b in upstream_states.values()):
        status = "degraded"
    return HealthReport(
        status=status,
        timestamp=time.time(),
        components=components,
        connection_pools=pool_sizes(engine, redis),
        performance_metrics=performance(),
        worker=worker,
        upstream_circuit_breakers=upstream_states,
    )


def _overall(components: Mapping[str, str]) -> Status:
    if "unhealthy" in (components["database"], components.get("redis")):
        return "unhealthy"
    optional_down = components["mlflow"] == "unreachable" or any(
        state == "OPEN" for name, state in components.items() if name.endswith("_circuit_breaker")
    )
    return "degraded" if optional_down else "healthy"


def readiness_report(
    *, migrated: bool, engine: Engine, checks: Mapping[str, Callable[[], bool]]
) -> ReadinessReport:
    results = {"migrations": migrated, "database": migrated and database_ok(engine)}
    for name, check in checks.items():
        try:
            results[name] = bool(check())
        except Exception as exc:  # a broken check means "not ready", never a 500
            log.warning(
                "readiness check failed",
                extra={"component": name, "error_type": type(exc).__name__},
            )
            results[name] = False
    return ReadinessReport(ready=all(results.values()), checks=results)
