"""The documented pipeline shapes: start, status and abort, and pages of runs and models.

Field names of the documented objects are kept exactly (see the API document); extras
(``continued``, ``run_status``, ``losses``, ``steps``...) are added next to them, never
instead of them. Values a run does not know yet are null.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from tuneloop.app.views import Page, RunView, StatusView
from tuneloop.config import check_cron
from tuneloop.domain.text import StorableText
from tuneloop.pipeline.service import AbortReport

# Five cron fields (minute hour day month weekday) of digits, names, * / , - and ?.
CRON_PATTERN = r"^\s*[\w*/,?-]+(\s+[\w*/,?-]+){4}\s*$"
StageState = Literal["completed", "in_progress", "pending", "failed", "skipped"]


class PipelineConfigIn(StorableText):
    """Per-run overrides of the pipeline settings; an omitted or null field keeps the default."""

    model_config = ConfigDict(extra="forbid")

    training_data_threshold: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="Minimum qualifying posts to train.",
    )
    engagement_threshold: float | None = Field(
        strict=True, default=None, ge=0.0, le=1.0, description="Minimum engagement rate of a post."
    )
    weekly_schedule: str | None = Field(
        default=None,
        max_length=100,
        pattern=CRON_PATTERN,
        json_schema_extra={"format": "cron"},
        description="Cron expression (5 fields) of the tenant's scheduled runs; stored as "
        "the tenant's schedule (the worker reads it) as well as with this run.",
    )
    a_b_test_duration_hours: int | None = Field(
        default=None,
        ge=1,
        le=24 * 365,
        description="How long the candidate's A/B test runs.",
    )

    @field_validator("weekly_schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

    def overrides(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class StartIn(StorableText):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "config": {
                        "training_data_threshold": 100,
                        "engagement_threshold": 0.06,
                        "weekly_schedule": "0 2 * * 0",
                        "a_b_test_duration_hours": 168,
                    },
                    "force_run": False,
                }
            ]
        },
    )

    config: PipelineConfigIn = Field(default_factory=PipelineConfigIn)
    force_run: bool = Field(
        strict=True,
        default=False,
        description="Run even below the data threshold, and even when the data is the one the "
        "champion or the last candidate was trained on.",
    )
    new: bool = Field(
        strict=True,
        default=False,
        description="Start a new run even if the tenant's last run failed (instead of "
        "continuing it): the way out of a run that keeps failing.",
    )


class ModelVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    model_id: str | None = Field(description="Registered model name; null until registered.")
    version: str | None = Field(description="Registered version; null until registered.")
    training_job_id: str | None = Field(description="Null until training starts.")
    base_model: str | None = Field(description="What the candidate is fine-tuned from.")
    status: str | None = Field(
        description="The version's status (challenger, champion, archived) once registered; "
        "before that the training job's (running, interrupted, succeeded, cancelled); null "
        "before training."
    )


class TrainingDataOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    hook_examples: int | None
    body_examples: int | None
    total_records: int | None = Field(description="Posts the dataset was built from.")


class MemoryUsageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    initial_mb: float | None = Field(description="Process RSS when the run started executing.")
    peak_mb: float | None
    final_mb: float | None


class StartOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    status: Literal["started"]
    pipeline_id: str
    continued: bool = Field(description="True when a crashed or failed run was continued.")
    run_status: str = Field(description="The run's state when the answer was made.")
    model_version: ModelVersionOut
    training_data: TrainingDataOut
    execution_time_seconds: float
    memory_usage: MemoryUsageOut

    @classmethod
    def of(cls, view: RunView) -> StartOut:
        return cls.model_validate(view)


class ProgressOut(BaseModel):
    data_collection: StageState
    model_training: StageState
    evaluation: StageState
    deployment: StageState


class StatusMetricsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    training_examples: int | None = Field(description="Training split size of the dataset.")
    training_duration_minutes: float | None = Field(description="So far, while training.")
    memory_efficiency_mb_per_example: float | None = Field(
        description="Peak memory (MB) per training example."
    )


class StepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    stage: str | None
    status: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


class TrainingProgressOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: int
    total_steps: int | None


class StatusOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    pipeline_id: str
    status: str = Field(
        description="pending, collecting_data, training, registering, evaluating, "
        "experimenting, deciding, rolling_out (running), waiting (for its A/B test or rollout; "
        "the worker checks it again), aborting, interrupted (nobody executes it: the next start "
        "continues it); finished: promoted, rolled_back, rejected, inconclusive, gated, "
        "no_new_data, not_enough_data, succeeded (a run of the first half only), failed or "
        "aborted."
    )
    run_status: str = Field(description="The run's state machine status (running while going).")
    finished: bool
    progress: ProgressOut
    current_stage: str | None = Field(description="Null once the run has finished.")
    current_step: str | None
    estimated_completion: datetime | None = Field(
        description="Elapsed time per finished step times the steps left; the finish time of "
        "a finished run; null until a step (or part of training) is done."
    )
    metrics: StatusMetricsOut
    message: str | None = Field(description="Why the run stopped early (not enough data...).")
    error: str | None
    losses: list[float] = Field(description="Training loss per step (at most 500 points).")
    training_progress: TrainingProgressOut | None = Field(
        description="Live training step, while this server trains it."
    )
    steps: list[StepOut]
    model_version: ModelVersionOut
    training_data: TrainingDataOut
    memory_usage: MemoryUsageOut
    execution_time_seconds: float
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    trigger: str = Field(description="What started the run: manual, schedule, data, drift...")
    evidence: dict[str, dict[str, Any]] = Field(
        description="The steps' evidence, by step: collect (counts, and `sources`: the "
        "share of examples per source model version and what the per-version cap dropped), "
        "evaluate (offline report), "
        "experiment (the A/B test it created), decide (lift, interval, SRM, verdict), rollout "
        "(deployment, timeline, the trigger that rolled it back)."
    )

    @classmethod
    def of(cls, view: StatusView) -> StatusOut:
        return cls.model_validate(view)


# ``StatusView`` has StatusOut's fields, in its order, with the same types: pydantic's
# serializer for the view writes StatusOut's JSON without building (and validating) a
# StatusOut from values the app has just computed (tests/unit/api/test_status_json.py).
_STATUS_VIEW = TypeAdapter(StatusView)


def status_json(view: StatusView) -> bytes:
    """``StatusOut.of(view).model_dump_json()``, encoded straight from the view."""
    return _STATUS_VIEW.dump_json(view)


class AbortIn(StorableText):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="user_requested", min_length=1, max_length=200)


class AbortOut(BaseModel):
    pipeline_id: str
    status: Literal["aborted", "aborting"] = Field(
        description="aborting when the executor did not stop within a minute."
    )
    cleanup_status: str = Field(description="completed, or pending while still aborting.")
    reason: str
    resources_cleaned: list[str] = Field(
        description="What was undone: temporary_files, training_data_cache, "
        "training_job_cancelled, experiment_stopped:<ab_test_id>, "
        "deployment_rolled_back:<deployment_id>."
    )

    @classmethod
    def of(cls, report: AbortReport) -> AbortOut:
        return cls(
            pipeline_id=report.run_id,
            status="aborted" if report.status == "aborted" else "aborting",
            cleanup_status=report.cleanup_status,
            reason=report.reason,
            resources_cleaned=report.resources_cleaned,
        )


class RunSummaryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    pipeline_id: str = Field(validation_alias="id")
    status: str
    trigger: str
    current_step: str | None
    dataset_id: str | None
    model_version: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunPageOut(BaseModel):
    items: list[RunSummaryOut]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(cls, page: Page) -> RunPageOut:
        return cls(
            items=[RunSummaryOut.model_validate(row) for row in page.items],
            total=page.total,
            limit=page.limit,
            offset=page.offset,
        )


class ModelVersionDetailOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    model_id: str
    version: str
    status: str = Field(description="challenger, champion or archived.")
    base_model: str
    run_id: str | None = Field(description="The pipeline run that trained it.")
    training_job_id: str | None
    dataset_id: str | None
    metrics: dict[str, Any] | None
    created_at: datetime


class ModelPageOut(BaseModel):
    items: list[ModelVersionDetailOut]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(cls, page: Page) -> ModelPageOut:
        return cls(
            items=[ModelVersionDetailOut.model_validate(row) for row in page.items],
            total=page.total,
            limit=page.limit,
            offset=page.offset,
        )
