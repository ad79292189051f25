"""``/metrics``: Prometheus text format; pool, breaker and worker gauges refreshed per scrape.

With several workers any one of them answers, with every worker's values merged
(``tuneloop.observability.metrics.exposition``); the gauges refreshed here are its own.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from tuneloop.api.resources import hooks_of, resources_of
from tuneloop.observability.health import pool_sizes, worker_status
from tuneloop.observability.metrics import (
    exposition,
    set_breaker_state,
    set_pool_gauges,
    set_worker_gauges,
)

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition format.",
        }
    },
    summary="Prometheus metrics",
)
def metrics(request: Request) -> Response:
    resources = resources_of(request.app)
    set_pool_gauges(pool_sizes(resources.engine, resources.redis))
    set_worker_gauges(*worker_status(resources.engine))
    for name, state in hooks_of(request.app).breakers.items():
        set_breaker_state(name, state())
    body, content_type = exposition()
    return Response(body, media_type=content_type)
