"""What an abort removes: the run's temporary files and partial artifacts, reported by name."""

from __future__ import annotations

import shutil

from sqlalchemy.orm import Session

from tuneloop.pipeline.context import RunContext
from tuneloop.store.pipeline_models import TrainingJob


def clean_run(ctx: RunContext) -> list[str]:
    """Remove what this run left behind; returns the documented resource names cleaned."""
    cleaned: list[str] = []
    if ctx.workdir.exists():
        shutil.rmtree(ctx.workdir, ignore_errors=True)
        cleaned.append("temporary_files")
    datasets = ctx.settings.artifacts_dir / "datasets" / ctx.tenant_id
    staging = list(datasets.glob(".building-*")) if datasets.exists() else []
    for folder in staging:
        shutil.rmtree(folder, ignore_errors=True)
    if staging:
        cleaned.append("training_data_cache")
    with Session(ctx.engine) as session, session.begin():
        job = session.get(TrainingJob, (ctx.tenant_id, ctx.run_id))
        # The trainer may have marked it cancelled already when it saw the stop signal.
        if job is not None and job.status != "succeeded":
            job.status = "cancelled"
            cleaned.append("training_job_cancelled")
    return cleaned
