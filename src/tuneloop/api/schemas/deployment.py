"""Deployments over HTTP: the documented deploy request and response, and pages of them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tuneloop.api.schemas.evaluation import ModelRefOut, ModelVersionIn
from tuneloop.domain.text import StorableText
from tuneloop.rollout.safety import EvaluationResult

_KEY = r"^[A-Za-z0-9_.-]+$"


class EvaluationResultIn(StorableText):
    model_config = ConfigDict(extra="forbid")

    ab_test_id: str = Field(min_length=1, max_length=64, pattern=_KEY)
    recommendation: Literal["promote", "reject", "continue"] = "promote"
    safety_checks_passed: bool = Field(default=True, strict=True)

    def result(self) -> EvaluationResult:
        return EvaluationResult(self.ab_test_id, self.recommendation, self.safety_checks_passed)


class RolloutConfigIn(StorableText):
    """Each field left out takes the ``rollout`` settings' value."""

    model_config = ConfigDict(extra="forbid")

    initial_traffic: float | None = Field(
        strict=True, default=None, gt=0.0, le=1.0, allow_inf_nan=False
    )
    increment_interval_hours: float | None = Field(
        strict=True, default=None, ge=0.0, le=24 * 366, allow_inf_nan=False
    )
    increment_percentage: float | None = Field(
        strict=True, default=None, gt=0.0, le=1.0, allow_inf_nan=False
    )
    max_traffic: float | None = Field(
        strict=True, default=None, gt=0.0, le=1.0, allow_inf_nan=False
    )

    def overrides(self) -> dict[str, float]:
        return self.model_dump(exclude_none=True)


class DeployIn(StorableText):
    """The documented ``POST /deployment/deploy`` request."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model_version": {"model_id": "tuneloop-acme", "version": "2"},
                    "evaluation_result": {
                        "ab_test_id": "ab-test-20250102-001",
                        "recommendation": "promote",
                        "safety_checks_passed": True,
                    },
                    "deployment_strategy": "gradual_rollout",
                    "rollout_config": {
                        "initial_traffic": 0.1,
                        "increment_interval_hours": 24,
                        "increment_percentage": 0.1,
                        "max_traffic": 1.0,
                    },
                }
            ]
        },
    )

    model_version: ModelVersionIn
    evaluation_result: EvaluationResultIn
    deployment_strategy: Literal["immediate", "gradual_rollout", "canary"] | None = Field(
        default=None, description="Default: the `rollout.strategy` setting."
    )
    rollout_config: RolloutConfigIn = Field(default_factory=RolloutConfigIn)


class RollbackIn(StorableText):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="rolled back by hand", min_length=1, max_length=500)


class RollbackPlanOut(BaseModel):
    previous_model: ModelRefOut
    rollback_time_seconds: int
    health_check_endpoints: list[str]


class MonitoringOut(BaseModel):
    deployment_dashboard: str = Field(description="Where to watch it: its dashboard page.")
    alerts_configured: bool = Field(
        description="Whether this server knows alert rules for it are loaded: always false (the "
        "rules ship in deploy/prometheus; loading them is the operator's Prometheus's business)."
    )
    rollback_triggers: list[str]


class DeploymentOut(BaseModel):
    """The documented deploy response fields, then the deployment's state."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "deployment_id": "deploy-20250102-001",
                    "status": "rolling_out",
                    "deployment_strategy": "gradual_rollout",
                    "current_traffic": 0.1,
                    "rollback_plan": {
                        "previous_model": {"model_id": "tuneloop-acme", "version": "1"},
                        "rollback_time_seconds": 60,
                        "health_check_endpoints": ["/health", "/health/ready"],
                    },
                    "monitoring": {
                        "deployment_dashboard": "/ui/deployments/deploy-20250102-001",
                        "alerts_configured": False,
                        "rollback_triggers": [
                            "engagement_rate_drop_15_percent",
                            "error_rate_above_5_percent",
                            "response_time_above_2000ms",
                        ],
                    },
                }
            ]
        }
    )

    deployment_id: str
    status: str = Field(description="rolling_out, promoting, completed, rolling_back, rolled_back.")
    deployment_strategy: str
    current_traffic: float
    rollback_plan: RollbackPlanOut
    monitoring: MonitoringOut
    model_version: ModelRefOut
    rollout_config: dict[str, Any]
    guardrails: dict[str, Any]
    ab_test_id: str
    step: int
    step_started_at: str
    plan: list[dict[str, Any]] = Field(
        description="While rolling out: each step's `traffic`, `earliest_start`, "
        "`earliest_advance` and what it `waits_for` (hold time, data, stall deadline)."
    )
    safety_checks: list[dict[str, Any]]
    last_checks: list[dict[str, Any]] | None
    last_reasons: list[str] | None
    reason: str | None
    created_at: str
    finished_at: str | None


class DeploymentDetailOut(DeploymentOut):
    events: list[dict[str, Any]] = Field(description="The audit trail, oldest first.")


class DeploymentPageOut(BaseModel):
    items: list[DeploymentOut]
    total: int = Field(description="Deployments the tenant has in all.")
    limit: int
    offset: int
