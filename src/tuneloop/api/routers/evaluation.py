"""``/evaluation``: create an A/B test (running at once), follow it, read its metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from tuneloop.api.auth import Operator, Viewer
from tuneloop.api.resources import ResourcesDep
from tuneloop.api.schemas.common import (
    AUTHENTICATED_RESPONSES,
    BODY_RESPONSES,
    PageLimit,
    PageOffset,
)
from tuneloop.api.schemas.evaluation import AbTestOut, AbTestPageOut, CreateAbTestIn, MetricsOut
from tuneloop.app.events import stream_lag
from tuneloop.app.experiments import (
    ab_test_page,
    create_ab_test,
    describe_experiment,
    experiment_metrics,
    get_experiment,
)
from tuneloop.wiring import servable_for

router = APIRouter(prefix="/evaluation", tags=["evaluation"], responses=AUTHENTICATED_RESPONSES)

AbTestId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The test's id, e.g. `ab-test-20250102-001`.",
    ),
]


@router.post(
    "/create-ab-test",
    status_code=201,
    responses=BODY_RESPONSES,
    summary="Create an A/B test of a candidate against the baseline; it starts running",
)
def create(body: CreateAbTestIn, principal: Operator, resources: ResourcesDep) -> AbTestOut:
    """Both models must exist for the tenant (404 otherwise); an omitted `version` is the
    tenant's champion. 409 while a rollout owns the tenant's traffic, or when a running test
    already compares the same models."""
    row = create_ab_test(
        resources.engine,
        principal.tenant_id,
        baseline=(body.baseline_model.model_id, body.baseline_model.version),
        candidate=(body.candidate_model.model_id, body.candidate_model.version),
        servable=servable_for(resources.settings),
        traffic_split=body.traffic_split,
        duration_hours=body.duration_hours,
        criteria=body.success_criteria.criteria(),
        upstreams=resources.settings.serving.upstreams,
    )
    return AbTestOut.of(describe_experiment(row))


@router.get(
    "/metrics/{ab_test_id}",
    summary="Per-arm metrics, the comparison, its statistics and the recommendation",
)
def metrics(principal: Viewer, resources: ResourcesDep, ab_test_id: AbTestId) -> MetricsOut:
    report = experiment_metrics(
        resources.engine, resources.reports, principal.tenant_id, ab_test_id
    )
    lag = stream_lag(resources.events)
    return MetricsOut.model_validate(report | {"event_stream": lag})


@router.get("/status/{ab_test_id}", summary="An A/B test's status, times, arms and decision")
def status(principal: Viewer, resources: ResourcesDep, ab_test_id: AbTestId) -> AbTestOut:
    row = get_experiment(resources.engine, principal.tenant_id, ab_test_id)
    return AbTestOut.of(describe_experiment(row))


@router.get("/ab-tests", summary="List A/B tests, newest first")
def list_ab_tests(
    principal: Viewer,
    resources: ResourcesDep,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> AbTestPageOut:
    page = ab_test_page(resources.engine, principal.tenant_id, limit=limit, offset=offset)
    return AbTestPageOut(
        items=[AbTestOut.of(describe_experiment(row)) for row in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )
