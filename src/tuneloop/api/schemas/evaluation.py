"""A/B tests over HTTP: the documented create request, the test as described, its metrics."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tuneloop.api.schemas.events import EventLagOut
from tuneloop.domain.experiments import SuccessCriteria
from tuneloop.domain.text import StorableText
from tuneloop.experiments.service import ModelRef

_ID = r"^[A-Za-z0-9_.:@/-]+$"


class ModelRefIn(StorableText):
    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(min_length=1, max_length=200, pattern=_ID)
    version: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Omitted: the tenant's champion of `model_id` (or, for a model tuneloop "
        "did not train, its configured upstream).",
    )


class ModelVersionIn(BaseModel):
    """An exact version (a deployment names one)."""

    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(min_length=1, max_length=200, pattern=_ID)
    version: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")

    def ref(self) -> ModelRef:
        return ModelRef(self.model_id, self.version)


class SuccessCriteriaIn(StorableText):
    model_config = ConfigDict(extra="forbid")

    min_engagement_lift: float = Field(
        strict=True, default=0.15, ge=-1.0, le=100.0, allow_inf_nan=False
    )
    min_cost_efficiency_gain: float = Field(
        strict=True, default=0.10, ge=-1.0, le=100.0, allow_inf_nan=False
    )
    significance_threshold: float = Field(
        strict=True, default=0.05, gt=0.0, lt=1.0, allow_inf_nan=False
    )
    stats_engine: Literal["frequentist", "bayesian"] = "frequentist"
    min_chance_to_win: float = Field(strict=True, default=0.95, gt=0.5, lt=1.0, allow_inf_nan=False)
    max_risk: float = Field(strict=True, default=0.01, gt=0.0, allow_inf_nan=False)
    correction: Literal["none", "holm-bonferroni", "benjamini-hochberg"] = "none"

    def criteria(self) -> SuccessCriteria:
        return SuccessCriteria(
            self.min_engagement_lift,
            self.min_cost_efficiency_gain,
            self.significance_threshold,
            stats_engine=self.stats_engine,
            min_chance_to_win=self.min_chance_to_win,
            max_risk=self.max_risk,
            correction=self.correction,
        )


class CreateAbTestIn(StorableText):
    """The documented ``create-ab-test`` request; the test starts running at once."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "baseline_model": {"model_id": "tuneloop-acme", "version": "1"},
                    "candidate_model": {"model_id": "tuneloop-acme", "version": "2"},
                    "traffic_split": 0.1,
                    "duration_hours": 168,
                    "success_criteria": {
                        "min_engagement_lift": 0.15,
                        "min_cost_efficiency_gain": 0.10,
                        "significance_threshold": 0.05,
                    },
                }
            ]
        },
    )

    baseline_model: ModelRefIn
    candidate_model: ModelRefIn
    traffic_split: float = Field(
        strict=True,
        default=0.1,
        gt=0.0,
        lt=1.0,
        allow_inf_nan=False,
        description="The candidate's share.",
    )
    duration_hours: int = Field(default=168, ge=1, le=24 * 366)
    success_criteria: SuccessCriteriaIn = Field(default_factory=SuccessCriteriaIn)


class ModelRefOut(BaseModel):
    model_id: str
    version: str


class MonitoringEndpoints(BaseModel):
    metrics: str
    status: str


class AbTestOut(BaseModel):
    """An A/B test: the documented ``create-ab-test`` response fields, then the rest."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ab_test_id": "ab-test-20250102-001",
                    "status": "running",
                    "start_time": "2025-01-02T10:00:00+00:00",
                    "estimated_end_time": "2025-01-09T10:00:00+00:00",
                    "traffic_allocation": {"baseline": 0.9, "candidate": 0.1},
                    "monitoring_endpoints": {
                        "metrics": "/evaluation/metrics/ab-test-20250102-001",
                        "status": "/evaluation/status/ab-test-20250102-001",
                    },
                }
            ]
        }
    )

    ab_test_id: str
    status: str = Field(description="draft, running, stopped or decided.")
    start_time: str | None
    estimated_end_time: str | None
    traffic_allocation: dict[str, float] = Field(description="Share of traffic per arm.")
    monitoring_endpoints: MonitoringEndpoints
    baseline_model: ModelRefOut
    candidate_model: ModelRefOut
    traffic_split: float
    arms: list[dict[str, Any]]
    duration_hours: int
    success_criteria: dict[str, Any]
    created_at: str
    end_time: str | None
    decision: str | None
    decision_reasons: list[str] | None

    @classmethod
    def of(cls, described: dict[str, Any]) -> AbTestOut:
        return cls.model_validate(described)


class AbTestPageOut(BaseModel):
    items: list[AbTestOut]
    total: int = Field(description="A/B tests the tenant has in all.")
    limit: int
    offset: int


class ArmMetricsOut(BaseModel):
    engagement_rate: float | None
    cost_per_token: float | None
    response_time_ms: float | None
    error_rate: float | None = None
    quality_score: float | None = Field(description="No quality signal is collected yet: null.")
    sample_size: int = Field(description="Units exposed to the arm.")


class PerformanceComparisonOut(BaseModel):
    engagement_lift: float | None
    cost_efficiency_gain: float | None
    quality_improvement: float | None
    latency_improvement: float | None


class StatisticalAnalysisOut(BaseModel):
    is_significant: bool
    confidence_level: float
    p_value: float | None
    effect_size: str | None = Field(description="small, medium or large.")
    stats_engine: str = Field(default="frequentist", description="frequentist or bayesian.")
    correction: str = Field(default="none", description="The multiple-testing correction.")
    adjusted_p_value: float | None = None
    chance_to_win: float | None = Field(default=None, description="Bayesian engine only.")
    risk: float | None = Field(
        default=None, description="Bayesian: the expected relative loss of the candidate."
    )
    cuped: dict[str, Any] | None = Field(
        default=None, description="theta, variance_reduction, error: when CUPED-adjusted."
    )


class MetricsOut(BaseModel):
    """The documented ``/evaluation/metrics`` fields, then the analysis behind them."""

    model_config = ConfigDict(extra="allow")

    ab_test_id: str
    status: str
    duration_hours: float = Field(description="Hours elapsed.")
    metrics: dict[str, ArmMetricsOut] = Field(description="Per arm: baseline, candidate.")
    performance_comparison: PerformanceComparisonOut
    statistical_analysis: StatisticalAnalysisOut
    recommendation: str = Field(description="promote, reject or continue.")
    reasons: list[str]
    event_stream: EventLagOut | None = Field(
        default=None,
        description="Events accepted but not yet written (read-your-writes): the figures "
        "above do not include them yet.",
    )
