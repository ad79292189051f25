"""``/deployment``: deploy a version after its safety checks, roll it back, look at it."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path

from tuneloop.api.auth import Operator, Viewer
from tuneloop.api.resources import Resources, ResourcesDep
from tuneloop.api.schemas.common import (
    AUTHENTICATED_RESPONSES,
    BODY_RESPONSES,
    ErrorResponse,
    PageLimit,
    PageOffset,
)
from tuneloop.api.schemas.deployment import (
    DeployIn,
    DeploymentDetailOut,
    DeploymentOut,
    DeploymentPageOut,
    RollbackIn,
)
from tuneloop.app.deployments import deploy, deployment_page, deployment_view, rollback
from tuneloop.app.events import stream_lag
from tuneloop.rollout.describe import describe_deployment

router = APIRouter(tags=["deployment"], responses=AUTHENTICATED_RESPONSES)


def _stall(resources: Resources) -> timedelta | None:
    """``rollout.stall_timeout_hours``, for the stall deadline in a deployment's plan."""
    hours = resources.settings.rollout.stall_timeout_hours
    return None if hours is None else timedelta(hours=hours)


_REFUSED: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorResponse,
        "description": "Refused by a safety check, or the tenant already has an active one.",
    }
}
_STATE: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "It cannot be rolled back in its state."}
}

DeploymentId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The deployment's id, e.g. `deploy-20250102-001`.",
    ),
]

DEPLOY_DESCRIPTION = """
Runs the safety checks (the version is registered and reachable; there is a champion to
roll back to; `evaluation_result.ab_test_id` recommends this very version, significantly,
against today's champion) and starts the rollout: `gradual_rollout` from
`rollout_config.initial_traffic`, `canary` held there, `immediate` at 100 %. A refused
deployment answers 409 naming each failed check; one already active for the tenant, 409.
The A/B test is closed with a promote decision.
"""


@router.post(
    "/deployment/deploy",
    status_code=201,
    responses=BODY_RESPONSES | _REFUSED,
    summary="Deploy a model version after its safety checks",
    description=DEPLOY_DESCRIPTION,
)
def deploy_version(body: DeployIn, principal: Operator, resources: ResourcesDep) -> DeploymentOut:
    row = deploy(
        resources.container,
        principal.tenant_id,
        model=body.model_version.ref(),
        evaluation=body.evaluation_result.result(),
        strategy=body.deployment_strategy,
        rollout=body.rollout_config.overrides(),
    )
    return DeploymentOut.model_validate(describe_deployment(row, stall_after=_stall(resources)))


@router.post(
    "/deployment/rollback/{deployment_id}",
    responses=BODY_RESPONSES | _STATE,
    summary="Send all traffic back to the previous model",
    description="Rolling back a rolled-back deployment answers its state again. A completed "
    "deployment can be rolled back only while no newer one exists (409 otherwise).",
)
def rollback_deployment(
    principal: Operator,
    resources: ResourcesDep,
    deployment_id: DeploymentId,
    body: RollbackIn | None = None,
) -> DeploymentOut:
    reason = (body or RollbackIn()).reason
    row = rollback(resources.container, principal.tenant_id, deployment_id, reason=reason)
    return DeploymentOut.model_validate(describe_deployment(row, stall_after=_stall(resources)))


@router.get("/deployment/{deployment_id}", summary="One deployment with its audit trail")
def get_deployment(
    principal: Viewer, resources: ResourcesDep, deployment_id: DeploymentId
) -> DeploymentDetailOut:
    view = deployment_view(
        resources.engine, principal.tenant_id, deployment_id, stall_after=_stall(resources)
    )
    return DeploymentDetailOut.model_validate(view | {"event_stream": stream_lag(resources.events)})


@router.get("/deployments", summary="List deployments, newest first")
def list_deployments(
    principal: Viewer,
    resources: ResourcesDep,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> DeploymentPageOut:
    page = deployment_page(resources.engine, principal.tenant_id, limit=limit, offset=offset)
    return DeploymentPageOut(
        items=[
            DeploymentOut.model_validate(describe_deployment(row, stall_after=_stall(resources)))
            for row in page.items
        ],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )
