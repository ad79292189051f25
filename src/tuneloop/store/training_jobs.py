"""Training jobs repository (tenant-scoped, one row per run): open, finish, mark, read.

The training stage, the cleanup of an aborted run, warm starts and the hosted evaluation
go through these; the row's columns are in ``store.pipeline_models.TrainingJob``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tuneloop.store.pipeline_models import TrainingJob
from tuneloop.store.types import utcnow


def get_training_job(engine: Engine, tenant_id: str, run_id: str) -> TrainingJob | None:
    """The run's job row, detached (None before training started)."""
    with Session(engine, expire_on_commit=False) as session:
        return session.get(TrainingJob, (tenant_id, run_id))


def open_training_job(
    engine: Engine,
    tenant_id: str,
    run_id: str,
    *,
    backend: str,
    output_dir: Path,
    base_model: str,
    hyperparameters: dict[str, Any],
) -> str:
    """Get or create the run's job row, counting the attempt and marking it running;
    returns the job id."""
    with Session(engine) as session, session.begin():
        job = session.get(TrainingJob, (tenant_id, run_id))
        if job is None:
            job = TrainingJob(
                tenant_id=tenant_id,
                run_id=run_id,
                id=f"{run_id}-train",
                backend=backend,
                base_model=base_model,
                status="created",
                output_dir=str(output_dir),
                attempts=0,
                hyperparameters=hyperparameters,
            )
            session.add(job)
        job.attempts += 1
        job.status = "running"
        return job.id


def finish_training_job(
    engine: Engine,
    tenant_id: str,
    run_id: str,
    *,
    status: str,
    result: dict[str, Any] | None,
    external_id: str | None = None,
) -> None:
    """Record how the job ended (its result, its hosted id when it has one), if it exists."""
    with Session(engine) as session, session.begin():
        job = session.get(TrainingJob, (tenant_id, run_id))
        if job is not None:
            job.status = status
            job.result = result
            job.finished_at = utcnow()
            job.external_id = external_id or job.external_id


def mark_training_job(
    engine: Engine, tenant_id: str, run_id: str, status: str, *, unless: str | None = None
) -> bool:
    """Set the job's status (not when it is ``unless``); whether a row was changed."""
    with Session(engine) as session, session.begin():
        job = session.get(TrainingJob, (tenant_id, run_id))
        if job is None or (unless is not None and job.status == unless):
            return False
        job.status = status
        return True
