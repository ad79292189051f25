"""A run as its entry points show it: the documented start and status views, from one read.

Built from a ``RunSnapshot`` (the run, its steps, training job and registered version, read
in one transaction as plain rows: ``store.run_snapshot``) plus, while this process executes
the run, its live training progress.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tuneloop.app.background import Worker
from tuneloop.app.progress import (
    StepState,
    current_stage_of,
    current_step_of,
    display_status,
    estimated_completion,
    is_active,
    progress_of,
)
from tuneloop.app.views import (
    MemoryView,
    ModelVersionView,
    RunView,
    StatusMetrics,
    StatusView,
    StepView,
    TrainingDataView,
    TrainingProgress,
)
from tuneloop.domain.runs import STAGE_OF_STEP, RunStatus, StepStatus
from tuneloop.pipeline.lease import owner_is_alive
from tuneloop.pipeline.outputs import (
    CollectOutput,
    DecideOutput,
    EvaluateOutput,
    ExperimentOutput,
    RolloutOutput,
    TrainOutput,
)
from tuneloop.store.run_snapshot import RunRow, RunSnapshot, StepRow

EVIDENCE_STEPS = ("collect", "evaluate", "experiment", "decide", "rollout")
MAX_CHART_POINTS = 500


def start_view(snapshot: RunSnapshot, *, continued: bool) -> RunView:
    """What a start answers: the run as far as it is known."""
    run, outputs = snapshot.run, _outputs(snapshot.steps)
    return RunView(
        status="started",
        pipeline_id=run.id,
        continued=continued,
        run_status=run.status,
        model_version=_model_version(snapshot),
        training_data=_training_data(outputs),
        execution_time_seconds=0.0,
        memory_usage=_memory(run),
    )


def status_view(snapshot: RunSnapshot, *, live: Worker | None, now: datetime) -> StatusView:
    """The run's documented status from one consistent read of the store."""
    run, steps = snapshot.run, snapshot.steps
    states = [StepState(s.name, s.status) for s in steps]
    outputs = _outputs(steps)
    training = _live_training(live, steps)
    fraction = (
        training.step / training.total_steps
        if training is not None and training.total_steps
        else None
    )
    collected = CollectOutput.maybe(outputs)
    examples = collected.counts.get("train") if collected is not None else None
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
        model_version=_model_version(snapshot),
        training_data=_training_data(outputs),
        memory_usage=_memory(run),
        execution_time_seconds=_elapsed(run, now),
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        trigger=run.trigger,
        evidence={name: outputs[name] for name in EVIDENCE_STEPS if name in outputs},
    )


def _outputs(steps: Sequence[StepRow]) -> dict[str, dict[str, Any]]:
    return {s.name: s.output for s in steps if s.output}


def _model_version(snapshot: RunSnapshot) -> ModelVersionView:
    """The run's model version: registered fields, else the training job's, else the config's."""
    row, job, run = snapshot.model, snapshot.job, snapshot.run
    if row is not None:
        return ModelVersionView(
            row.model_id, row.version, row.training_job_id, row.base_model, row.status
        )
    if job is not None:
        return ModelVersionView(None, None, job.id, job.base_model, job.status)
    base = run.config.get("training", {}).get("base_model")
    return ModelVersionView(None, None, None, base, None)


def _training_data(outputs: dict[str, dict[str, Any]]) -> TrainingDataView:
    collected = CollectOutput.maybe(outputs)
    if collected is None:
        return TrainingDataView(None, None, None)
    counts = collected.counts
    return TrainingDataView(counts.get("hook"), counts.get("body"), collected.source_records)


def _memory(run: RunRow) -> MemoryView:
    return MemoryView(run.memory_initial_mb, run.memory_peak_mb, run.memory_final_mb)


def _elapsed(run: RunRow, now: datetime) -> float:
    if run.started_at is None:
        return 0.0
    return round(((run.finished_at or now) - run.started_at).total_seconds(), 3)


def _training_minutes(
    steps: Sequence[StepRow], outputs: dict[str, dict[str, Any]], now: datetime
) -> float | None:
    train = next((s for s in steps if s.name == "train"), None)
    # Only a finished train step's output is a whole TrainOutput (a running one may hold
    # its progress so far, e.g. the losses).
    done = train is not None and train.status == StepStatus.SUCCEEDED
    trained = TrainOutput.maybe(outputs) if done else None
    if trained is not None and trained.seconds is not None:
        return round(trained.seconds / 60, 3)
    if train is None or train.status != StepStatus.RUNNING or train.started_at is None:
        return None
    return round((now - train.started_at).total_seconds() / 60, 3)


def _live_training(live: Worker | None, steps: Sequence[StepRow]) -> TrainingProgress | None:
    running = any(s.name == "train" and s.status == StepStatus.RUNNING for s in steps)
    if live is None or not running:
        return None
    step, total, _ = live.progress.snapshot()
    return TrainingProgress(step, total)


def _losses(live: Worker | None, outputs: dict[str, dict[str, Any]]) -> list[float]:
    # The losses as recorded with the step (whole once it finished, or its progress so far),
    # else this process's live view of a run it executes.
    recorded = (outputs.get("train") or {}).get("losses")
    if isinstance(recorded, list) and recorded:
        return [float(loss) for loss in recorded]
    return live.progress.snapshot()[2] if live is not None else []


def _chart(values: list[float]) -> list[float]:
    """At most MAX_CHART_POINTS evenly spaced points, the last one kept."""
    if len(values) <= MAX_CHART_POINTS:
        return values
    stride = len(values) / MAX_CHART_POINTS
    picked = [values[int(i * stride)] for i in range(MAX_CHART_POINTS - 1)]
    return [*picked, values[-1]]


def _interrupted(run: RunRow, executing_here: bool, now: datetime) -> bool:
    """Active, but nobody executes it: a server stopped (or crashed) in the middle of it."""
    if run.status != RunStatus.RUNNING or executing_here:
        return False
    return run.lease_owner is None or not owner_is_alive(run.lease_owner, run.heartbeat_at, now)


def _interrupted_message(steps: Sequence[StepRow]) -> str:
    why = next((s.error for s in steps if s.error and s.error.startswith("interrupted")), None)
    return f"{why or 'interrupted'}; POST /fine-tuning/start (or `tuneloop run`) continues it"


def _outcome_message(run: RunRow, outputs: dict[str, dict[str, Any]]) -> str | None:
    """Why a run ended or waits, in words, from its steps' typed outputs."""
    collected, evaluated = CollectOutput.maybe(outputs), EvaluateOutput.maybe(outputs)
    experiment, decided = ExperimentOutput.maybe(outputs), DecideOutput.maybe(outputs)
    rollout = RolloutOutput.maybe(outputs)
    if run.status in ("not_enough_data", "no_new_data"):
        return collected.message if collected is not None else run.status.replace("_", " ")
    if run.status == "gated":
        return evaluated.reason if evaluated is not None else "gated by offline evaluation"
    if run.status == "aborted":
        return f"aborted: {run.abort_reason or 'user_requested'}"
    if run.status in ("rejected", "inconclusive") and decided is not None:
        return f"{run.status}: " + "; ".join(decided.reasons)
    if run.status == "rolled_back" and rollout is not None:
        fired = ", ".join(rollout.triggers) or "by hand"
        return f"rolled back ({fired}): " + "; ".join(rollout.reasons)
    if run.status == "promoted":
        if rollout is not None:
            return f"promoted by {rollout.deployment_id}"
        if experiment is not None and experiment.bootstrap:
            return (
                f"{experiment.candidate} is the first champion (bootstrap {experiment.bootstrap})"
            )
    if run.status == "waiting":
        if rollout is not None:
            return f"rollout {rollout.deployment_id} at {rollout.traffic:.0%}: " + "; ".join(
                rollout.reasons
            )
        if decided is not None:
            return f"A/B test {decided.ab_test_id} {decided.recommendation}: " + "; ".join(
                decided.reasons
            )
        if experiment is not None and experiment.waiting_for:
            return f"no champion yet: waiting for `{experiment.waiting_for}`"
    return None


def _step_view(step: StepRow) -> StepView:
    return StepView(
        step.name,
        STAGE_OF_STEP.get(step.name),
        step.status,
        step.attempts,
        step.started_at,
        step.finished_at,
        step.error,
    )
