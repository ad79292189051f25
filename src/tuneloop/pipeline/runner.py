"""Executes a run's steps in order, resuming after the last committed one.

A run is executed by whoever holds its lease; a heartbeat thread renews the lease and
notices abort requests. Each step is idempotent: it may be re-run after a crash and finds
what it already made (dataset by content hash, training job by run id, MLflow run and
model version by tags).

Two ways to stop a run early: an abort (stored, by a user) ends it ``aborted`` and cleans
up; an interruption (``RunContext.interrupt``, by an executor that is going away, such as
a server shutting down) stops at the same safe points but keeps everything: the run stays
``running`` with its lease released, like a crashed run, and is continued from its last
committed step by the next ``tuneloop run`` or ``POST /fine-tuning/start``.

A step that fails because MLflow is down (its breaker open, or unreachable after retries)
waits the outage out — until the breaker lets a trial through, for at most
``mlflow.outage_wait_seconds`` in all — and runs again. A run that still fails for the outage
ends ``failed`` with an error starting ``retryable: `` (``domain.runs.is_retryable``), so a
worker knows it can simply continue it later.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from tuneloop.domain.runs import FINISHED, RETRYABLE, RunStatus, StepStatus
from tuneloop.errors import ConflictError, ExternalServiceError
from tuneloop.observability.metrics import count_pipeline_run
from tuneloop.pipeline.cleanup import clean_run
from tuneloop.pipeline.context import AbortRequested, InterruptRequested, RunContext, StepOutcome
from tuneloop.pipeline.lease import HEARTBEAT_SECONDS, new_owner, owner_is_alive
from tuneloop.pipeline.memory import MemorySampler, MemoryUsage
from tuneloop.store import runs as repo
from tuneloop.store.explain import in_words
from tuneloop.store.pipeline_models import PipelineRun, PipelineStep
from tuneloop.store.types import utcnow

log = logging.getLogger(__name__)

StepFunction = Callable[[RunContext, dict[str, dict[str, Any]]], StepOutcome]


def execute(
    ctx: RunContext, steps: dict[str, StepFunction], *, poll_seconds: float = 1.0
) -> RunStatus:
    """Run (or continue) ``ctx.run_id``, holding its lease throughout.

    Returns the final status, ``WAITING`` when a step waits for the world (an A/B test, a
    rollout: ``app.runs.advance_runs`` checks it again), or ``RUNNING`` when the run was
    interrupted (not finished: its lease is released for whoever continues it).
    """
    owner = _take_lease(ctx)
    stop_heartbeat = threading.Event()
    beat = threading.Thread(
        target=_heartbeat,
        args=(ctx, owner, stop_heartbeat, poll_seconds),
        name="tuneloop-heartbeat",
        daemon=True,
    )
    before = repo.get_run(ctx.engine, ctx.tenant_id, ctx.run_id)
    run = repo.move_run(
        ctx.engine,
        ctx.tenant_id,
        ctx.run_id,
        RunStatus.RUNNING,
        started_at=before.started_at or utcnow(),
        error=None,
    )
    beat.start()
    sampler = MemorySampler(alert_mb=ctx.settings.pipeline.memory_alert_mb)
    ctx.memory = lambda: memory_fields(before, sampler.so_far())
    status = RunStatus.FAILED
    try:
        with sampler:
            if run.abort_requested:
                ctx.abort.set()
            status = _run_steps(ctx, steps)
    finally:
        stop_heartbeat.set()
        beat.join()
        usage = sampler.usage
        repo.update_run(
            ctx.engine, ctx.tenant_id, ctx.run_id, lease_owner=None, **memory_fields(before, usage)
        )
        ctx.report("memory", usage.as_dict())
    if status in FINISHED:  # not WAITING or an interrupted RUNNING: those go on later
        count_pipeline_run(str(status))
    return status


def _take_lease(ctx: RunContext) -> str:
    run = repo.get_run(ctx.engine, ctx.tenant_id, ctx.run_id)
    if run.lease_owner is not None and owner_is_alive(run.lease_owner, run.heartbeat_at, utcnow()):
        raise ConflictError(f"run {run.id} is being executed by {run.lease_owner}")
    owner = new_owner()
    if not repo.claim(ctx.engine, ctx.tenant_id, ctx.run_id, expected=run.lease_owner, owner=owner):
        raise ConflictError(f"run {run.id} was claimed by another process")
    return owner


def _heartbeat(ctx: RunContext, owner: str, stop: threading.Event, poll_seconds: float) -> None:
    waited = 0.0
    while not stop.wait(poll_seconds):
        waited += poll_seconds
        try:
            # Poll the abort flag often (cheap), renew the lease every HEARTBEAT_SECONDS.
            if repo.heartbeat(ctx.engine, ctx.tenant_id, ctx.run_id, owner=owner):
                ctx.abort.set()
        except Exception:  # a blip in the database must not kill the run
            log.warning("heartbeat for run %s failed", ctx.run_id, exc_info=True)
        if waited >= HEARTBEAT_SECONDS:
            waited = 0.0


def _run_steps(ctx: RunContext, steps: dict[str, StepFunction]) -> RunStatus:
    outputs: dict[str, dict[str, Any]] = {}
    for step in repo.steps_of(ctx.engine, ctx.tenant_id, ctx.run_id):
        if step.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED):
            outputs[step.name] = step.output or {}
            continue
        try:
            ctx.check_abort()
            outcome = _run_through_outages(ctx, step, steps[step.name], outputs)
        except AbortRequested:
            return _finish_aborted(ctx, step.name)
        except InterruptRequested:
            return _finish_interrupted(ctx, step.name)
        except ExternalServiceError as error:
            if step.status == StepStatus.WAITING:  # a re-check hit an outage: check later
                return _keep_waiting(ctx, step.name, error)
            return _finish_failed(ctx, step.name, error)
        except Exception as error:
            return _finish_failed(ctx, step.name, error)
        outputs[step.name] = outcome.output
        if outcome.wait:
            repo.move_run(ctx.engine, ctx.tenant_id, ctx.run_id, RunStatus.WAITING)
            ctx.report("run_waiting", {"step": step.name, "output": outcome.output})
            return RunStatus.WAITING
        if outcome.final is not None:
            _skip_rest(ctx, after=step.position)
            _finish(ctx, outcome.final)
            return outcome.final
    _finish(ctx, RunStatus.SUCCEEDED)
    return RunStatus.SUCCEEDED


def _run_through_outages(
    ctx: RunContext,
    step: PipelineStep,
    function: StepFunction,
    outputs: dict[str, dict[str, Any]],
) -> StepOutcome:
    """Run the step; while it fails for an MLflow outage, wait (``ctx.sleep``) until the
    breaker lets a trial through, and run it again (steps are idempotent), for at most
    ``mlflow.outage_wait_seconds`` in all. A step still failing then raises ``OutageError``.

    A waiting step's re-check does not wait here: an outage keeps the run waiting and the
    worker's next tick checks again (a tick must never block on an outage)."""
    if step.status == StepStatus.WAITING:
        return _run_one(ctx, step, function, outputs)
    name = step.name
    budget = ctx.settings.mlflow.outage_wait_seconds
    waited = 0.0
    while True:
        try:
            return _run_one(ctx, step, function, outputs)
        except Exception as error:
            if not _is_outage(error):
                raise
            if waited >= budget:
                raise OutageError(error) from error
            retry_after = getattr(error, "retry_after_s", None) or OUTAGE_POLL_SECONDS
            pause = min(max(retry_after, 0.1), budget - waited)
            log.warning(
                "run %s step %s waits %.0f s for MLflow (%s)", ctx.run_id, name, pause, error
            )
            ctx.report("waiting_for_mlflow", {"step": name, "seconds": pause})
            ctx.sleep(pause)
            waited += pause
            ctx.check_abort()


OUTAGE_POLL_SECONDS = 10.0  # between tries when MLflow is unreachable but the breaker closed


class OutageError(Exception):
    """A step that needs MLflow failed for an outage that outlasted the wait."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")


def _is_outage(error: Exception) -> bool:
    """MLflow down: its breaker open, or unreachable after the retries."""
    return isinstance(error, ExternalServiceError) and error.service == "mlflow"


def _run_one(
    ctx: RunContext,
    step: PipelineStep,
    function: StepFunction,
    outputs: dict[str, dict[str, Any]],
) -> StepOutcome:
    name = step.name
    # A waiting step's next check is the same attempt, not a new one.
    again = step.status == StepStatus.WAITING
    attempts = step.attempts if again else step.attempts + 1
    repo.update_step(
        ctx.engine,
        ctx.tenant_id,
        ctx.run_id,
        name,
        status=StepStatus.RUNNING,
        attempts=attempts,
        started_at=step.started_at if again and step.started_at else utcnow(),
        error=None,
    )
    repo.update_run(ctx.engine, ctx.tenant_id, ctx.run_id, current_step=name)
    if not again:
        ctx.report("step_started", {"step": name, "attempt": attempts})
    outcome = function(ctx, outputs)
    if outcome.wait:  # checked, not done: its evidence so far is kept with the step
        repo.update_step(
            ctx.engine,
            ctx.tenant_id,
            ctx.run_id,
            name,
            status=StepStatus.WAITING,
            output=outcome.output,
        )
        return outcome
    repo.update_step(
        ctx.engine,
        ctx.tenant_id,
        ctx.run_id,
        name,
        status=StepStatus.SUCCEEDED,
        output=outcome.output,
        finished_at=utcnow(),
    )
    ctx.report("step_finished", {"step": name, "output": outcome.output})
    return outcome


def _skip_rest(ctx: RunContext, *, after: int) -> None:
    for step in repo.steps_of(ctx.engine, ctx.tenant_id, ctx.run_id):
        if step.position > after and step.status == StepStatus.PENDING:
            repo.update_step(
                ctx.engine, ctx.tenant_id, ctx.run_id, step.name, status=StepStatus.SKIPPED
            )


def memory_fields(before: PipelineRun, usage: MemoryUsage) -> dict[str, float]:
    """The run's memory columns: a continued run keeps its first initial reading and its
    highest peak across attempts."""
    return {
        "memory_initial_mb": before.memory_initial_mb or usage.initial_mb,
        "memory_peak_mb": max(before.memory_peak_mb or 0.0, usage.peak_mb),
        "memory_final_mb": usage.final_mb,
    }


def _final_memory(ctx: RunContext) -> dict[str, float]:
    return ctx.memory() if ctx.memory is not None else {}


def _finish(ctx: RunContext, status: RunStatus) -> None:
    repo.move_run(
        ctx.engine,
        ctx.tenant_id,
        ctx.run_id,
        status,
        finished_at=utcnow(),
        current_step=None,
        **_final_memory(ctx),
    )
    ctx.report("run_finished", {"status": status.value})


def _finish_failed(ctx: RunContext, step: str, error: Exception) -> RunStatus:
    detail = f"{type(error).__name__}: {error}"
    message = in_words(error) or detail  # words for people; the detail goes to the log
    if isinstance(error, OutageError):  # nothing wrong with the run: continue it later
        message = f"{RETRYABLE}{in_words(error) or error}"
    log.error("run %s step %s failed: %s", ctx.run_id, step, detail)
    log.debug("traceback of run %s step %s", ctx.run_id, step, exc_info=error)
    repo.update_step(
        ctx.engine,
        ctx.tenant_id,
        ctx.run_id,
        step,
        status=StepStatus.FAILED,
        error=message,
        finished_at=utcnow(),
    )
    repo.move_run(
        ctx.engine,
        ctx.tenant_id,
        ctx.run_id,
        RunStatus.FAILED,
        error=f"{RETRYABLE}{step}: {error}"
        if isinstance(error, OutageError)
        else f"{step}: {message}",
        finished_at=utcnow(),
        **_final_memory(ctx),
    )
    ctx.report("run_finished", {"status": "failed", "error": message})
    return RunStatus.FAILED


def _keep_waiting(ctx: RunContext, step: str, error: Exception) -> RunStatus:
    """A waiting step's check could not reach a service (MLflow, a database): the run keeps
    waiting with its evidence so far, the error noted on the step, and the next advance
    checks it again. Days of A/B test are not thrown away for a minute's outage."""
    message = f"{type(error).__name__}: {error}"
    log.warning("run %s: checking %s failed (%s); it keeps waiting", ctx.run_id, step, message)
    repo.update_step(
        ctx.engine, ctx.tenant_id, ctx.run_id, step, status=StepStatus.WAITING, error=message
    )
    repo.move_run(ctx.engine, ctx.tenant_id, ctx.run_id, RunStatus.WAITING)
    ctx.report("run_waiting", {"step": step, "output": {}, "error": message})
    return RunStatus.WAITING


def _finish_aborted(ctx: RunContext, step: str) -> RunStatus:
    repo.move_run(ctx.engine, ctx.tenant_id, ctx.run_id, RunStatus.ABORTING)
    repo.update_step(
        ctx.engine,
        ctx.tenant_id,
        ctx.run_id,
        step,
        status=StepStatus.FAILED,
        error="aborted",
        finished_at=utcnow(),
    )
    cleaned = clean_run(ctx)
    run = repo.get_run(ctx.engine, ctx.tenant_id, ctx.run_id)
    repo.move_run(
        ctx.engine,
        ctx.tenant_id,
        ctx.run_id,
        RunStatus.ABORTED,
        finished_at=utcnow(),
        current_step=None,
        cleanup={
            "status": "completed",
            "resources_cleaned": cleaned,
            "reason": run.abort_reason or "user_requested",
        },
    )
    ctx.report("run_finished", {"status": "aborted", "resources_cleaned": cleaned})
    return RunStatus.ABORTED


def _finish_interrupted(ctx: RunContext, step: str) -> RunStatus:
    """Leave the run for its next executor: nothing cleaned, no job cancelled.

    The run stays ``running`` (``execute`` releases the lease), which is what
    ``resumable_run`` continues; the step is pending again and its next attempt resumes
    from what this one kept (the trainer's complete checkpoints).
    """
    if repo.get_run(ctx.engine, ctx.tenant_id, ctx.run_id).abort_requested:
        return _finish_aborted(ctx, step)  # a user's abort that raced the interruption wins
    reason = ctx.interrupt_reason
    repo.update_step(
        ctx.engine,
        ctx.tenant_id,
        ctx.run_id,
        step,
        status=StepStatus.PENDING,
        error=f"interrupted: {reason}",
    )
    log.info(
        "run %s interrupted during %s (%s); it continues on its next start",
        ctx.run_id,
        step,
        reason,
    )
    ctx.report("run_interrupted", {"step": step, "reason": reason})
    return RunStatus.RUNNING
