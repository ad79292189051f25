"""A deployment as the documented ``POST /deployment/deploy`` response, plus its state."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tuneloop.rollout.plan import rollout_plan
from tuneloop.rollout.policy import Guardrails, RolloutConfig
from tuneloop.store.deployment_models import Deployment, DeploymentEvent


def describe_deployment(row: Deployment, *, stall_after: timedelta | None = None) -> dict[str, Any]:
    """``stall_after``: ``rollout.stall_timeout_hours``, shown in the plan when given."""
    plan = row.rollback_plan
    return {
        "deployment_id": row.id,
        "status": row.status,
        "deployment_strategy": row.strategy,
        "current_traffic": row.traffic,
        "model_version": {"model_id": row.model_id, "version": row.version},
        "rollback_plan": {
            "previous_model": plan["previous_model"],
            "rollback_time_seconds": plan["rollback_time_seconds"],
            "health_check_endpoints": plan["health_check_endpoints"],
        },
        "monitoring": {
            # The dashboard's page of this deployment. Alert rules ship in deploy/prometheus, but
            # this server cannot know whether a Prometheus loaded them: never claim it did.
            "deployment_dashboard": f"/ui/deployments/{row.id}",
            "alerts_configured": False,
            "rollback_triggers": plan["triggers"],
        },
        "rollout_config": row.rollout_config,
        "guardrails": row.guardrails,
        "ab_test_id": row.ab_test_id,
        "step": row.step,
        "step_started_at": row.step_started_at.isoformat(),
        "plan": rollout_plan(
            strategy=row.strategy,
            status=row.status,
            traffic=row.traffic,
            step=row.step,
            step_started_at=row.step_started_at,
            config=RolloutConfig.from_json(row.rollout_config),
            guardrails=Guardrails.from_json(row.guardrails),
            stall_after=stall_after,
        ),
        "safety_checks": row.safety_checks,
        "last_checks": row.last_checks,
        "last_reasons": row.last_reasons,
        "reason": row.reason,
        "created_at": row.created_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
    }


def describe_event(event: DeploymentEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": event.at.isoformat(),
        "kind": event.kind,
        "from_traffic": event.from_traffic,
        "to_traffic": event.to_traffic,
        "reasons": event.reasons,
        "actor": event.actor,
        "details": event.details,
    }
