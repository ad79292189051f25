"""Deployment use cases: deploy after the safety checks, roll back, promote, look at them.

``/deployment``, ``tuneloop deploy|rollback|deployments`` and the dashboard call these; the
work is the container's ``DeploymentManager`` (``tuneloop.rollout.manager``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from tuneloop.experiments.service import ModelRef
from tuneloop.rollout.describe import describe_deployment, describe_event
from tuneloop.rollout.policy import RolloutConfig
from tuneloop.rollout.safety import EvaluationResult
from tuneloop.store import deployments as repo
from tuneloop.store.deployment_models import Deployment
from tuneloop.wiring import Container

__all__ = [
    "Deployment",
    "DeploymentPage",
    "active_deployment",
    "deploy",
    "deployment_page",
    "deployment_view",
    "get_deployment",
    "list_deployments",
    "promote",
    "rollback",
    "stall_after",
]


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
    rollout: Mapping[str, float],
    actor: str = "api",
) -> Deployment:
    """Deploy after the safety checks; ``rollout`` overrides the settings' rollout_config."""
    manager = container.deployments
    config = RolloutConfig(**(manager.default_config().to_json() | dict(rollout)))
    return manager.deploy(
        tenant_id,
        model=model,
        evaluation=evaluation,
        strategy=strategy,
        rollout_config=config,
        actor=actor,
    )


def rollback(
    container: Container, tenant_id: str, deployment_id: str, *, reason: str, actor: str = "api"
) -> Deployment:
    """Send all traffic back to the previous model and restore its champion alias."""
    return container.deployments.rollback(tenant_id, deployment_id, reason=reason, actor=actor)


def promote(
    container: Container, tenant_id: str, deployment_id: str, *, force: bool, actor: str
) -> Deployment:
    """Take a canary (or a rollout held at max_traffic) to 100 % and make it champion."""
    return container.deployments.promote(tenant_id, deployment_id, force=force, actor=actor)


def stall_after(container: Container) -> timedelta | None:
    """How long a step may wait before the plan shows it stalled (the manager's setting)."""
    return container.deployments.stall.after


def deployment_view(
    engine: Engine, tenant_id: str, deployment_id: str, *, stall_after: timedelta | None = None
) -> dict[str, Any]:
    """The documented response fields with the state, the plan and the audit trail (read
    in one transaction)."""
    row, events = repo.deployment_with_events(engine, tenant_id, deployment_id)
    described = describe_deployment(row, stall_after=stall_after)
    return described | {"events": [describe_event(e) for e in events]}


def deployment_page(engine: Engine, tenant_id: str, *, limit: int, offset: int) -> DeploymentPage:
    """One page of the tenant's deployments, newest first, with their total (one
    transaction)."""
    items, total = repo.deployments_page(engine, tenant_id, limit=limit, offset=offset)
    return DeploymentPage(items, total, limit, offset)


def list_deployments(
    engine: Engine, tenant_id: str, *, status: str | None = None, limit: int = 50
) -> Sequence[Deployment]:
    """Newest first, of one status or all."""
    return repo.list_deployments(engine, tenant_id, status=status, limit=limit)


def get_deployment(engine: Engine, tenant_id: str, deployment_id: str) -> Deployment:
    return repo.get_deployment(engine, tenant_id, deployment_id)


def active_deployment(engine: Engine, tenant_id: str) -> Deployment | None:
    """The tenant's deployment that owns its traffic now, if any."""
    return repo.active_deployment(engine, tenant_id)
