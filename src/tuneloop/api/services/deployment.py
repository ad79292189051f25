"""What the ``/deployment`` routes call: the container's deployment manager, and pages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from tuneloop.experiments.service import ModelRef
from tuneloop.rollout.describe import describe_deployment, describe_event
from tuneloop.rollout.policy import RolloutConfig
from tuneloop.rollout.safety import EvaluationResult
from tuneloop.store import deployments as repo
from tuneloop.store.deployment_models import Deployment
from tuneloop.wiring import Container


@dataclass(frozen=True)
class DeploymentPage:
    items: Sequence[Deployment]
    total: int
    limit: int
    offset: int


def deploy(
    container: Container,
    tenant_id: str,
    *,
    model: ModelRef,
    evaluation: EvaluationResult,
    strategy: str | None,
    rollout: dict[str, float],
) -> Deployment:
    """Deploy after the safety checks; ``rollout`` overrides the settings' rollout_config."""
    manager = container.deployments
    config = RolloutConfig(**(manager.default_config().to_json() | rollout))
    return manager.deploy(
        tenant_id,
        model=model,
        evaluation=evaluation,
        strategy=strategy,
        rollout_config=config,
        actor="api",
    )


def rollback(
    container: Container, tenant_id: str, deployment_id: str, *, reason: str
) -> Deployment:
    return container.deployments.rollback(tenant_id, deployment_id, reason=reason, actor="api")


def deployment_view(
    engine: Engine, tenant_id: str, deployment_id: str, *, stall_after: timedelta | None = None
) -> dict[str, Any]:
    """The documented response fields with the state, the plan and the audit trail."""
    row = repo.get_deployment(engine, tenant_id, deployment_id)
    events = repo.list_events(engine, tenant_id, deployment_id)
    described = describe_deployment(row, stall_after=stall_after)
    return described | {"events": [describe_event(e) for e in events]}


def deployment_page(engine: Engine, tenant_id: str, *, limit: int, offset: int) -> DeploymentPage:
    items = repo.list_deployments(engine, tenant_id, limit=limit, offset=offset)
    query = select(func.count()).select_from(Deployment).where(Deployment.tenant_id == tenant_id)
    with engine.connect() as connection:
        total = int(connection.execute(query).scalar_one())
    return DeploymentPage(items, total, limit, offset)
