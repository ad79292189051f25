"""``/health``, ``/health/live``, ``/health/ready``: probes, open to all (no credentials).

Kubernetes and load balancers call these without credentials, so they carry no tenant
data: component states, pool sizes and process figures only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tuneloop.api.resources import hooks_of, resources_of
from tuneloop.api.schemas.health import HealthOut, LiveOut, ReadyOut
from tuneloop.observability.health import health_report, readiness_report

router = APIRouter(prefix="/health", tags=["health"])
_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": ReadyOut, "description": "Not ready; `checks` says what is missing."}
}
_UNHEALTHY: dict[int | str, dict[str, Any]] = {
    503: {"model": HealthOut, "description": "A required component (database, Redis) is down."}
}


@router.get("", response_model=HealthOut, responses=_UNHEALTHY, summary="Component health")
def health(request: Request) -> JSONResponse:
    resources = resources_of(request.app)
    report = health_report(
        engine=resources.engine,
        redis=resources.redis,
        mlflow_uri=resources.settings.mlflow.tracking_uri,
        breakers=hooks_of(request.app).breakers,
        upstreams=_upstream_breakers(request),
    )
    status = 503 if report.status == "unhealthy" else 200
    return JSONResponse(HealthOut.of(report).model_dump(mode="json"), status_code=status)


def _upstream_breakers(request: Request) -> dict[str, dict[str, Any]]:
    serving = getattr(request.app.state, "serving", None)
    return {} if serving is None else serving.upstream.breaker_snapshots()


@router.get("/live", summary="Liveness: the process answers")
def live() -> LiveOut:
    return LiveOut()


@router.get(
    "/ready",
    response_model=ReadyOut,
    responses=_NOT_READY,
    summary="Readiness: migrated, database up, hooks pass",
)
def ready(request: Request) -> JSONResponse:
    resources = resources_of(request.app)
    report = readiness_report(
        migrated=resources.migrated, engine=resources.engine, checks=hooks_of(request.app).readiness
    )
    return JSONResponse(
        ReadyOut.of(report).model_dump(mode="json"), status_code=200 if report.ready else 503
    )
