"""Health, liveness and readiness answers, in the documented shape."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tuneloop.observability.health import HealthReport, ReadinessReport


class ConnectionPools(BaseModel):
    db_connections_active: int
    db_connections_idle: int
    redis_connections_active: int
    redis_connections_idle: int


class PerformanceMetrics(BaseModel):
    avg_response_time_ms: float = Field(description="Mean over the last 1,000 requests.")
    cache_hit_rate: float | None = Field(description="None until a cache has been asked.")
    memory_usage_mb: float
    cpu_usage_percent: float


class WorkerOut(BaseModel):
    leader: str = Field(description="The worker holding the leader lease (host:pid:id).")
    lease_expires_at: str = Field(description="When its lease ends unless renewed (ISO).")
    last_tick_at: str | None = Field(description="Its last tick (ISO); None before the first.")


class HealthOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "healthy",
                    "timestamp": 1735808400.0,
                    "components": {
                        "database": "healthy",
                        "redis": "healthy",
                        "mlflow": "not_configured",
                        "openai_circuit_breaker": "CLOSED",
                        "mlflow_circuit_breaker": "CLOSED",
                        "worker": "leading",
                    },
                    "connection_pools": {
                        "db_connections_active": 1,
                        "db_connections_idle": 1,
                        "redis_connections_active": 0,
                        "redis_connections_idle": 1,
                    },
                    "performance_metrics": {
                        "avg_response_time_ms": 4.2,
                        "cache_hit_rate": None,
                        "memory_usage_mb": 182.5,
                        "cpu_usage_percent": 1.5,
                    },
                    "worker": {
                        "leader": "host-1:4242:9f2c01ab",
                        "lease_expires_at": "2025-01-02T09:01:30+00:00",
                        "last_tick_at": "2025-01-02T09:00:00+00:00",
                    },
                }
            ]
        }
    )

    status: Literal["healthy", "degraded", "unhealthy"]
    timestamp: float = Field(description="Epoch seconds.")
    components: dict[str, str] = Field(
        description="database, redis (when configured): healthy|unhealthy; mlflow: "
        "reachable|unreachable|local|not_configured; *_circuit_breaker: CLOSED|OPEN|HALF_OPEN; "
        "worker: leading|no_leader|unknown (informational: never makes the status unhealthy)."
    )
    connection_pools: ConnectionPools
    performance_metrics: PerformanceMetrics
    worker: WorkerOut | None = Field(
        default=None, description="The leading worker and its last tick; None: none yet."
    )
    upstream_circuit_breakers: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Each serving upstream's breaker (`upstream:MODEL[@VERSION]`): `state`, "
        "`calls` and `failures` in its sliding window, `retry_after_s`. An OPEN one makes "
        "`status` degraded.",
    )

    @classmethod
    def of(cls, report: HealthReport) -> HealthOut:
        return cls.model_validate(report, from_attributes=True)


class LiveOut(BaseModel):
    status: Literal["alive"] = "alive"


class ReadyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ready", "checks": {"migrations": True, "database": True}}]
        }
    )

    status: Literal["ready", "not_ready"]
    checks: dict[str, bool] = Field(description="Each readiness check and whether it passed.")

    @classmethod
    def of(cls, report: ReadinessReport) -> ReadyOut:
        return cls(status="ready" if report.ready else "not_ready", checks=report.checks)
