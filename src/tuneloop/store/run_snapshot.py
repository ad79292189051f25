"""A run as its status is read: the run, its steps, training job and model version as plain
rows, from one transaction of two prepared Core queries (no ORM objects).

The status endpoint is the API's most frequent read. Loading ORM entities (identity map,
instance state, attribute instrumentation for every column of four tables) was two thirds
of its time; these rows hold only the columns the views read (``docs/decisions/0023``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.orm import InstrumentedAttribute

from tuneloop.errors import NotFoundError
from tuneloop.store.pipeline_models import ModelVersion, PipelineRun, PipelineStep, TrainingJob


@dataclass(frozen=True, slots=True)
class RunRow:
    id: str
    status: str
    trigger: str
    config: dict[str, Any]
    error: str | None
    lease_owner: str | None
    heartbeat_at: datetime | None
    abort_reason: str | None
    memory_initial_mb: float | None
    memory_peak_mb: float | None
    memory_final_mb: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class StepRow:
    name: str
    status: str
    attempts: int
    output: dict[str, Any] | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobRow:
    id: str
    base_model: str
    status: str


@dataclass(frozen=True, slots=True)
class ModelRow:
    model_id: str
    version: str
    training_job_id: str | None
    base_model: str
    status: str


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """A run with its steps (in order), training job and registered version, read together."""

    run: RunRow
    steps: list[StepRow]
    job: JobRow | None
    model: ModelRow | None


def _columns(row: type, entity: type) -> list[InstrumentedAttribute[Any]]:
    """``entity``'s columns named like ``row``'s fields, in their order (rows are built
    positionally from what is selected)."""
    return [getattr(entity, field.name) for field in fields(row)]


_RUN, _JOB, _MODEL = (
    _columns(RunRow, PipelineRun),
    _columns(JobRow, TrainingJob),
    _columns(ModelRow, ModelVersion),
)
_JOB_AT, _MODEL_AT = len(_RUN), len(_RUN) + len(_JOB)
_TENANT, _RUN_ID = bindparam("tenant_id"), bindparam("run_id")
# Built once: building a statement and its cache key per call was a third of a status
# read's time; executions only bind the tenant and the run. The run with its job and (any)
# model version in one query, its steps in another.
_HEAD = (
    select(*_RUN, *_JOB, *_MODEL)
    .outerjoin(
        TrainingJob,
        (TrainingJob.tenant_id == PipelineRun.tenant_id) & (TrainingJob.run_id == PipelineRun.id),
    )
    .outerjoin(
        ModelVersion,
        (ModelVersion.tenant_id == PipelineRun.tenant_id) & (ModelVersion.run_id == PipelineRun.id),
    )
    .where(PipelineRun.tenant_id == _TENANT, PipelineRun.id == _RUN_ID)
    .limit(1)
)
_STEPS = (
    select(*_columns(StepRow, PipelineStep))
    .where(PipelineStep.tenant_id == _TENANT, PipelineStep.run_id == _RUN_ID)
    .order_by(PipelineStep.position)
)


def run_snapshot(engine: Engine, tenant_id: str, run_id: str) -> RunSnapshot:
    """The run, its steps, job and model version: one transaction; NotFoundError outside
    the tenant."""
    keys = {"tenant_id": tenant_id, "run_id": run_id}
    with engine.begin() as connection:
        head = connection.execute(_HEAD, keys).first()
        if head is None:
            raise NotFoundError(f"pipeline run {run_id!r} not found")
        steps = [StepRow(*row) for row in connection.execute(_STEPS, keys)]
    job = JobRow(*head[_JOB_AT:_MODEL_AT]) if head[_JOB_AT] is not None else None
    model = ModelRow(*head[_MODEL_AT:]) if head[_MODEL_AT] is not None else None
    return RunSnapshot(RunRow(*head[:_JOB_AT]), steps, job, model)
