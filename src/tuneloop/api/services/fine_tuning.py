"""The fine-tuning pipeline over HTTP: start in the background, report status, abort, list.

Each function gathers what the store knows about a run (its row, steps, training job and
registered version) plus, while this server executes it, its live training progress, and
returns plain views that the schemas mirror. Starting goes through ``RunWorkers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tuneloop.api.services.pipeline_views import (
    MemoryView,
    ModelVersionView,
    Page,
    RunView,
    StatusMetrics,
    StatusView,
    StepView,
    TrainingDataView,
    TrainingProgress,
)
from tuneloop.api.services.run_progress import (
    StepState,
    current_stage_of,
    current_step_of,
    display_status,
    estimated_completion,
    is_active,
    progress_of,
)
from tuneloop.api.services.run_workers import RunWorkers, Worker
from tuneloop.config import Settings
from tuneloop.domain.runs import STAGE_OF_STEP, RunStatus, StepStatus
from tuneloop.errors import ConflictError, NotFoundError
from tuneloop.pipeline.lease import owner_is_alive
from tuneloop.pipeline.service import AbortReport, abort_run, resumable_run, start_run
from tuneloop.store import runs as repo
from tuneloop.store.models_registry import get_model_version, list_model_versions
from tuneloop.store.pipeline_models import ModelVersion, PipelineRun, PipelineStep
from tuneloop.store.schedules import set_cron
from tuneloop.store.types import utcnow

MAX_CHART_POINTS = 500


def start_pipeline(
    engine: Engine,
    settings: Settings,
    tenant_id: str,
    *,
    workers: RunWorkers,
    overrides: dict[str, Any],
    force_run: bool,
) -> RunView:
    """Continue the tenant's crashed or failed run, or start a new one, in the background."""
    with workers.start_lock:  # one start at a time in this process: no double launch
        busy = workers.live_for_tenant(tenant_id)
        if busy is not None:
            raise ConflictError(
                f"run {busy.run_id} is already active for tenant {tenant_id!r}; "
                "abort it or let it finish"
            )
        existing = resumable_run(engine, tenant_id)
        run = existing or start_run(
            engine, settings, tenant_id, overrides=overrides, force_run=force_run
        )
        if run.status == RunStatus.FAILED:
            # Reopen it before answering: a status read right after this 202 must not see
            # the old, finished "failed" (the worker thread may not have started yet).
            run = repo.move_run(engine, tenant_id, run.id, RunStatus.RUNNING, error=None)
        workers.launch(engine, settings, run)
    if overrides.get("weekly_schedule"):  # validated cron: the tenant's schedule from now on
        set_cron(engine, tenant_id, overrides["weekly_schedule"], now=utcnow())
    outputs = _outputs(repo.steps_of(engine, tenant_id, run.id))
    return RunView(
        status="started",
        pipeline_id=run.id,
        continued=existing is not None,
        run_status=run.status,
        model_version=_model_version(engine, run, outputs),
        training_data=_training_data(outputs),
        execution_time_seconds=0.0,
        memory_usage=_memory(run),
    )


def run_status(engine: Engine, tenant_id: str, run_id: str, *, workers: RunWorkers) -> StatusView:
    """The run's documented status; NotFoundError for an unknown or another tenant's id."""
    run = repo.get_run(engine, tenant_id, run_id)
    steps = repo.steps_of(engine, tenant_id, run_id)
    states = [StepState(s.name, s.status) for s in steps]
    outputs = _outputs(steps)
    live = workers.get(tenant_id, run_id)
    training = _live_training(live, steps)
    now = utcnow()
    fraction = (
        training.step / training.total_steps
        if training is not None and training.total_steps
        else None
    )
    examples = outputs.get("collect", {}).get("counts", {}).get("train")
    stalled = _interrupted(run, live is not None, now)
    return StatusView(
        pipeline_id=run.id,
        status="interrupted" if stalled else display_status(states, run_status=run.status),
        run_status=run.status,
        finished=not is_active(run.status),
        progress=dict(progress_of(states, run_status=run.status)),
        current_stage=current_stage_of(states, run_status=run.status),
        current_step=current_step_of(states, run_status=run.status),
        estimated_completion=None
        if stalled
        else estimated_completion(
            states,
            run_status=run.status,
            started_at=run.started_at,
            finished_at=run.finished_at,
            now=now,
            running_fraction=fraction,
        ),
        metrics=StatusMetrics(
            training_examples=examples,
            training_duration_minutes=_training_minutes(steps, outputs, now),
            memory_efficiency_mb_per_example=(
                round(run.memory_peak_mb / examples, 3) if run.memory_peak_mb and examples else None
            ),
        ),
        message=_interrupted_message(steps) if stalled else _outcome_message(run, outputs),
        error=run.error,
        losses=_chart(_losses(live, outputs)),
        training_progress=training,
        steps=[_step_view(s) for s in steps],
        model_version=_model_version(engine, run, outputs),
        training_data=_training_data(outputs),
        memory_usage=_memory(run),
        execution_time_seconds=_elapsed(run, now),
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


def abort_pipeline(
    engine: Engine, settings: Settings, tenant_id: str, run_id: str, *, reason: str
) -> AbortReport:
    """Ask the run to stop and wait (up to a minute) for its cleanup; see ``abort_run``."""
    return abort_run(engine, settings, tenant_id, run_id, reason=reason)


def run_page(engine: Engine, tenant_id: str, *, limit: int, offset: int) -> Page:
    rows, total = repo.list_runs(engine, tenant_id, limit=limit, offset=offset)
    return Page(rows, total, limit, offset)


def model_page(engine: Engine, tenant_id: str, *, limit: int, offset: int) -> Page:
    rows = list_model_versions(engine, tenant_id, limit=limit, offset=offset)
    with Session(engine) as session:  # the registry module has no count of its own
        total = session.scalar(
            select(func.count())
            .select_from(ModelVersion)
            .where(ModelVersion.tenant_id == tenant_id)
        )
    return Page(rows, total or 0, limit, offset)


def _outputs(steps: Sequence[PipelineStep]) -> dict[str, dict[str, Any]]:
    return {s.name: s.output for s in steps if s.output}


def _model_version(
    engine: Engine, run: PipelineRun, outputs: dict[str, dict[str, Any]]
) -> ModelVersionView:
    """The run's model version: registered fields, else the training job's, else the config's."""
    with Session(engine) as session:
        job = repo.training_job_for(session, run.tenant_id, run.id)
        job_fields = (job.id, job.base_model, job.status) if job is not None else None
    base = run.config.get("training", {}).get("base_model")
    registered = outputs.get("register")
    if registered is not None:
        try:
            row = get_model_version(
                engine, run.tenant_id, registered["model_id"], str(registered["version"])
            )
        except NotFoundError:
            row = None
        if row is not None:
            return ModelVersionView(
                row.model_id, row.version, row.training_job_id, row.base_model, row.status
            )
    if job_fields is not None:
        return ModelVersionView(None, None, job_fields[0], job_fields[1], job_fields[2])
    return ModelVersionView(None, None, None, base, None)


def _training_data(outputs: dict[str, dict[str, Any]]) -> TrainingDataView:
    collected = outputs.get("collect")
    if collected is None:
        return TrainingDataView(None, None, None)
    counts = collected.get("counts", {})
    return TrainingDataView(counts.get("hook"), counts.get("body"), collected.get("source_records"))


def _memory(run: PipelineRun) -> MemoryView:
    return MemoryView(run.memory_initial_mb, run.memory_peak_mb, run.memory_final_mb)


def _elapsed(run: PipelineRun, now: datetime) -> float:
    if run.started_at is None:
        return 0.0
    return round(((run.finished_at or now) - run.started_at).total_seconds(), 3)


def _training_minutes(
    steps: Sequence[PipelineStep], outputs: dict[str, dict[str, Any]], now: datetime
) -> float | None:
    if "seconds" in outputs.get("train", {}):
        return round(float(outputs["train"]["seconds"]) / 60, 3)
    train = next((s for s in steps if s.name == "train"), None)
    if train is None or train.status != StepStatus.RUNNING or train.started_at is None:
        return None
    return round((now - train.started_at).total_seconds() / 60, 3)


def _live_training(live: Worker | None, steps: Sequence[PipelineStep]) -> TrainingProgress | None:
    running = any(s.name == "train" and s.status == StepStatus.RUNNING for s in steps)
    if live is None or not running:
        return None
    step, total, _ = live.progress.snapshot()
    return TrainingProgress(step, total)


def _losses(live: Worker | None, outputs: dict[str, dict[str, Any]]) -> list[float]:
    if "losses" in outputs.get("train", {}):
        return [float(x) for x in outputs["train"]["losses"]]
    return live.progress.snapshot()[2] if live is not None else []


def _chart(values: list[float]) -> list[float]:
    """At most MAX_CHART_POINTS evenly spaced points, the last one kept."""
    if len(values) <= MAX_CHART_POINTS:
        return values
    stride = len(values) / MAX_CHART_POINTS
    picked = [values[int(i * stride)] for i in range(MAX_CHART_POINTS - 1)]
    return [*picked, values[-1]]


def _interrupted(run: PipelineRun, executing_here: bool, now: datetime) -> bool:
    """Active, but nobody executes it: a server stopped (or crashed) in the middle of it."""
    if run.status != RunStatus.RUNNING or executing_here:
        return False
    return run.lease_owner is None or not owner_is_alive(run.lease_owner, run.heartbeat_at, now)


def _interrupted_message(steps: Sequence[PipelineStep]) -> str:
    why = next((s.error for s in steps if s.error and s.error.startswith("interrupted")), None)
    return f"{why or 'interrupted'}; POST /fine-tuning/start (or `tuneloop run`) continues it"


def _outcome_message(run: PipelineRun, outputs: dict[str, dict[str, Any]]) -> str | None:
    """Why a run stopped early: the collector's message, or the offline gate's reason."""
    if run.status == "not_enough_data":
        return str(outputs.get("collect", {}).get("message") or "not enough data")
    if run.status == "gated":
        return str(outputs.get("evaluate", {}).get("reason") or "gated by offline evaluation")
    if run.status == "aborted":
        return f"aborted: {run.abort_reason or 'user_requested'}"
    return None


def _step_view(step: PipelineStep) -> StepView:
    return StepView(
        step.name,
        STAGE_OF_STEP.get(step.name),
        step.status,
        step.attempts,
        step.started_at,
        step.finished_at,
        step.error,
    )
