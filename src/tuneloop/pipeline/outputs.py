"""Each step's output as a type: stored as JSON with the step, read back through its model.

Steps hand each other these (``CollectOutput.of(outputs)``) instead of dicts read by string
key; the CLI, the API and the demo read them the same way. Unknown keys are kept
(``extra="allow"``), so an output written by a newer step still reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field


class StepOutput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")
    step: ClassVar[str]

    @classmethod
    def of(cls, outputs: Mapping[str, Mapping[str, Any] | None]) -> Self:
        """This step's output among a run's outputs (by step name); KeyError if absent."""
        data = outputs[cls.step]
        if data is None:
            raise KeyError(cls.step)
        return cls.model_validate(dict(data))

    @classmethod
    def maybe(cls, outputs: Mapping[str, Mapping[str, Any] | None]) -> Self | None:
        data = outputs.get(cls.step)
        return None if not data else cls.model_validate(dict(data))

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class CollectOutput(StepOutput):
    step: ClassVar[str] = "collect"
    status: str
    message: str = ""
    counts: dict[str, int] = Field(default_factory=dict)
    source_records: int = 0
    qualifying: int | None = None
    tokens_total: int | None = None
    estimated_cost_usd: float | None = None
    dataset_id: str | None = None
    path: str | None = None
    mlflow_run_id: str | None = None
    same_data_as: str | None = None  # no_new_data: the model version trained on this dataset
    # Examples and share per source model version, the cap and what it dropped (and why).
    sources: dict[str, Any] = Field(default_factory=dict)


class TrainOutput(StepOutput):
    step: ClassVar[str] = "train"
    job_id: str
    backend: str
    base_model: str
    adapter_path: str
    train_loss: float | None = None
    validation_loss: float | None = None
    losses: list[float] = Field(default_factory=list)
    tokens_seen: int | None = None
    seconds: float | None = None
    tokens_per_second: float | None = None
    device: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    resumed_from: str | None = None
    # A hosted backend's job: the provider's job id, the ``ft:`` model it serves, its bill.
    external_id: str | None = None
    hosted_model: str | None = None
    trained_tokens: int | None = None
    estimated_cost_usd: float | None = None
    warm_start: dict[str, Any] | None = None


class RegisterOutput(StepOutput):
    step: ClassVar[str] = "register"
    model_id: str
    version: int | str
    source: str | None = None


class EvaluateOutput(StepOutput):
    step: ClassVar[str] = "evaluate"
    passed: bool
    reason: str = ""
    reference: str = "reference"
    candidate_loss: float | None = None
    reference_loss: float | None = None
    delta: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


class ExperimentOutput(StepOutput):
    """The A/B test the run created, or how the run bootstrapped a tenant with no champion."""

    step: ClassVar[str] = "experiment"
    ab_test_id: str | None = None
    baseline: str | None = None  # MODEL@VERSION
    candidate: str | None = None
    traffic_split: float | None = None
    duration_hours: int | None = None
    success_criteria: dict[str, float | str] = Field(default_factory=dict)  # engine, correction
    bootstrap: str | None = None  # promote / manual: no champion, no A/B test
    waiting_for: str | None = None
    created: bool = False  # made by this check (False: found again)


class DecideOutput(StepOutput):
    """The A/B test's evidence at the last check, and its verdict once there is one."""

    step: ClassVar[str] = "decide"
    ab_test_id: str
    recommendation: str  # promote / reject / continue / inconclusive / blocked
    reasons: list[str] = Field(default_factory=list)
    lift: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    srm_ok: bool | None = None
    srm_p_value: float | None = None
    sample_sizes: dict[str, int] = Field(default_factory=dict)
    elapsed_hours: float = 0.0
    planned_hours: float = 0.0
    checked_at: str | None = None


class RolloutOutput(StepOutput):
    """The deployment and its timeline; ``outcome`` once it completed or rolled back."""

    step: ClassVar[str] = "rollout"
    deployment_id: str
    strategy: str
    status: str
    traffic: float
    outcome: str | None = None  # promoted / rolled_back
    triggers: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    timeline: list[dict[str, Any]] = Field(default_factory=list)
