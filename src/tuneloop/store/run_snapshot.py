"""A run as its status is read: the run, its steps, training job and model version as plain
rows, from one prepared Core statement (no ORM objects).

The status endpoint is the API's most frequent read. Loading ORM entities (identity map,
instance state, attribute instrumentation for every column of four tables) was two thirds
of its time; these rows hold only the columns the views read (``docs/decisions/0023``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Integer, bindparam, cast, literal, null, select, union_all
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import BindParameter

from tuneloop.errors import NotFoundError
from tuneloop.store.db import one_statement
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
_STEP = _columns(StepRow, PipelineStep)
_JOB_AT = 1 + len(_RUN)  # after the sort key and the run
_MODEL_AT = _JOB_AT + len(_JOB)
_STEP_AT = _MODEL_AT + len(_MODEL)
_TENANT: BindParameter[str] = bindparam("tenant_id")
_RUN_ID: BindParameter[str] = bindparam("run_id")


def _nulls(columns: list[InstrumentedAttribute[Any]]) -> list[Any]:
    """Typed NULLs in the place of ``columns`` (labelled: equal casts would be merged)."""
    return [
        cast(null(), column.type).label(f"no_{column.class_.__name__}_{column.key}")
        for column in columns
    ]


# One statement, built once (building a statement and its cache key per call was a third
# of a status read's time): first the run with its job and latest model version, then one
# row per step, each half NULL where the other has columns. One statement reads one
# snapshot of the database (two would not, under PostgreSQL's READ COMMITTED) and needs no
# BEGIN and COMMIT around it: one round trip.
_HEAD = (
    select(literal(-1, Integer).label("position"), *_RUN, *_JOB, *_MODEL, *_nulls(_STEP))
    .outerjoin(
        TrainingJob,
        (TrainingJob.tenant_id == PipelineRun.tenant_id) & (TrainingJob.run_id == PipelineRun.id),
    )
    .outerjoin(
        ModelVersion,
        (ModelVersion.tenant_id == PipelineRun.tenant_id) & (ModelVersion.run_id == PipelineRun.id),
    )
    .where(PipelineRun.tenant_id == _TENANT, PipelineRun.id == _RUN_ID)
    .order_by(ModelVersion.created_at.desc())
    .limit(1)
    .subquery()
)
_STEPS = select(PipelineStep.position, *_nulls(_RUN), *_nulls(_JOB), *_nulls(_MODEL), *_STEP).where(
    PipelineStep.tenant_id == _TENANT, PipelineStep.run_id == _RUN_ID
)
_SNAPSHOT = union_all(select(_HEAD), _STEPS).order_by("position")


def run_snapshot(engine: Engine, tenant_id: str, run_id: str) -> RunSnapshot:
    """The run, its steps, job and model version: one statement (one transaction, one
    pool checkout); NotFoundError outside the tenant."""
    with engine.connect() as connection:
        rows = (
            one_statement(connection)
            .execute(_SNAPSHOT, {"tenant_id": tenant_id, "run_id": run_id})
            .all()
        )
    if not rows or rows[0][0] != -1:
        raise NotFoundError(f"pipeline run {run_id!r} not found")
    head, steps = rows[0], [StepRow(*row[_STEP_AT:]) for row in rows[1:]]
    job = JobRow(*head[_JOB_AT:_MODEL_AT]) if head[_JOB_AT] is not None else None
    model = ModelRow(*head[_MODEL_AT:_STEP_AT]) if head[_MODEL_AT] is not None else None
    return RunSnapshot(RunRow(*head[1:_JOB_AT]), steps, job, model)
