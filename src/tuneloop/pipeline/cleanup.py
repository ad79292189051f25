"""What an abort undoes: temporary files, partial artifacts, and the run's live A/B test or
rollout (stopped, rolled back), reported by name."""

from __future__ import annotations

import logging
import shutil

from tuneloop.errors import ExternalServiceError, NotFoundError
from tuneloop.experiments.service import get_experiment, stop_experiment
from tuneloop.pipeline.context import RunContext
from tuneloop.pipeline.loop import experiment_key
from tuneloop.store.deployments import deployment_for_experiment
from tuneloop.store.training_jobs import get_training_job, mark_training_job

log = logging.getLogger(__name__)


def clean_run(ctx: RunContext) -> list[str]:
    """Remove what this run left behind; returns the documented resource names cleaned."""
    cleaned: list[str] = []
    if _cancel_hosted_job(ctx):  # before the work directory goes: it holds the job's id
        cleaned.append("openai_job_cancelled")
    if ctx.workdir.exists():
        shutil.rmtree(ctx.workdir, ignore_errors=True)
        cleaned.append("temporary_files")
    datasets = ctx.settings.artifacts_dir / "datasets" / ctx.tenant_id
    staging = list(datasets.glob(".building-*")) if datasets.exists() else []
    for folder in staging:
        shutil.rmtree(folder, ignore_errors=True)
    if staging:
        cleaned.append("training_data_cache")
    # The trainer may have marked it cancelled already when it saw the stop signal.
    if mark_training_job(ctx.engine, ctx.tenant_id, ctx.run_id, "cancelled", unless="succeeded"):
        cleaned.append("training_job_cancelled")
    return cleaned + _undo_live(ctx)


def _undo_live(ctx: RunContext) -> list[str]:
    """Stop the run's running A/B test; roll back its deployment if it is still going."""
    key = experiment_key(ctx.run_id)
    done: list[str] = []
    try:
        experiment = get_experiment(ctx.engine, ctx.tenant_id, key)
    except NotFoundError:
        return done
    if experiment.status == "running":
        stop_experiment(ctx.engine, ctx.tenant_id, key, now=ctx.clock.now())
        done.append(f"experiment_stopped:{key}")
    deployment = deployment_for_experiment(ctx.engine, ctx.tenant_id, key)
    if deployment is not None and deployment.status in ("rolling_out", "promoting"):
        ctx.services.deployments.rollback(
            ctx.tenant_id,
            deployment.id,
            reason=f"run {ctx.run_id} aborted",
            actor=f"run {ctx.run_id}",
            now=ctx.clock.now(),
        )
        done.append(f"deployment_rolled_back:{deployment.id}")
    return done


def _cancel_hosted_job(ctx: RunContext) -> bool:
    """Cancel the run's hosted fine-tuning job if one may be running (found by its stored id,
    else by the metadata naming this run, so a job whose id was never recorded is found)."""
    job = get_training_job(ctx.engine, ctx.tenant_id, ctx.run_id)
    hosted = job is not None and job.backend == "openai" and job.status != "succeeded"
    if not hosted:
        return False
    from tuneloop.train.backends import cancel_external_job

    try:
        cancelled = cancel_external_job(
            ctx.settings,
            tenant_id=ctx.tenant_id,
            run_id=ctx.run_id,
            output_dir=ctx.workdir / "train",
        )
    except ExternalServiceError as exc:  # the abort still completes; the job is named
        log.warning("could not cancel the hosted job of run %s: %s", ctx.run_id, exc)
        return False
    return cancelled is not None
