"""How a run's steps read as the documented progress: stage states, current stage, an ETA.

Plain functions over plain values (step names and statuses, timestamps), so the rules are
easy to read and test without a database. The stages are the documented ones
(``data_collection``, ``model_training``, ``evaluation``, ``deployment``); which step belongs
to which stage is ``tuneloop.domain.runs.STAGE_OF_STEP``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from tuneloop.domain.runs import ACTIVE, STAGE_OF_STEP, RunStatus, StepStatus

StageState = Literal["completed", "in_progress", "pending", "failed", "skipped"]
STAGES: tuple[str, ...] = ("data_collection", "model_training", "evaluation", "deployment")

# While a run is running, ``status`` says what it is doing (the documented "training").
ACTIVITY_OF_STEP = {
    "collect": "collecting_data",
    "train": "training",
    "register": "registering",
    "evaluate": "evaluating",
    "experiment": "experimenting",
    "decide": "deciding",
    "rollout": "rolling_out",
}


@dataclass(frozen=True)
class StepState:
    """What the progress rules need of one step."""

    name: str
    status: str


def is_active(run_status: str) -> bool:
    return run_status in {s.value for s in ACTIVE}


def stage_state(statuses: Sequence[str], *, run_status: str) -> StageState:
    """One stage's state from its steps' statuses (a stage may hold several steps)."""
    if not statuses:
        # No step implements the stage yet (deployment happens after the A/B test): it is
        # still ahead of a run that is going or went well, and skipped by one that stopped.
        keep = is_active(run_status) or run_status == RunStatus.SUCCEEDED
        return "pending" if keep else "skipped"
    states = set(statuses)
    if StepStatus.FAILED in states:
        return "failed"
    if StepStatus.RUNNING in states or StepStatus.WAITING in states:
        return "in_progress"
    if states == {StepStatus.PENDING}:
        # Ahead of a run that is going; never reached by one that ended (aborted, failed).
        return "pending" if is_active(run_status) else "skipped"
    if states == {StepStatus.SKIPPED}:
        return "skipped"
    if states <= {StepStatus.SUCCEEDED, StepStatus.SKIPPED}:
        return "completed"
    # Some steps done, some pending: between two steps of the stage.
    return "in_progress" if is_active(run_status) else "pending"


def progress_of(steps: Sequence[StepState], *, run_status: str) -> dict[str, StageState]:
    """The documented ``progress`` object: every stage with its state.

    A promoted run's deployment is completed however it got there (a rollout, or the
    first champion's bootstrap, which skips the A/B test and the rollout); a rolled-back
    run's deployment failed.
    """
    found: dict[str, StageState] = {
        stage: stage_state(
            [s.status for s in steps if STAGE_OF_STEP.get(s.name) == stage],
            run_status=run_status,
        )
        for stage in STAGES
    }
    if run_status == RunStatus.PROMOTED:
        found["deployment"] = "completed"
    elif run_status == RunStatus.ROLLED_BACK:
        found["deployment"] = "failed"  # deployed, then rolled back: it did not hold
    return found


def current_step_of(steps: Sequence[StepState], *, run_status: str) -> str | None:
    """The step being executed, or the next one to run; None once the run has finished."""
    if not is_active(run_status):
        return None
    for wanted in (StepStatus.RUNNING, StepStatus.WAITING, StepStatus.PENDING):
        for step in steps:
            if step.status == wanted:
                return step.name
    return None


def current_stage_of(steps: Sequence[StepState], *, run_status: str) -> str | None:
    step = current_step_of(steps, run_status=run_status)
    return None if step is None else STAGE_OF_STEP.get(step)


def display_status(steps: Sequence[StepState], *, run_status: str) -> str:
    """The run's status, with ``running`` told apart by activity (``training``...)."""
    if run_status != RunStatus.RUNNING:
        return run_status  # waiting, or how it ended
    step = current_step_of(steps, run_status=run_status)
    return ACTIVITY_OF_STEP.get(step or "", run_status)


def estimated_completion(
    steps: Sequence[StepState],
    *,
    run_status: str,
    started_at: datetime | None,
    finished_at: datetime | None,
    now: datetime,
    running_fraction: float | None = None,
) -> datetime | None:
    """When the run should finish: elapsed time per finished step, times the steps left.

    A finished run answers its ``finished_at``. A running one counts its finished (or
    skipped) steps, plus the running step's share when known (training's step / total);
    the average time per counted step so far, times the steps not yet counted, is added
    to now. Unknown (None) until at least part of a step is done. Deliberately crude:
    steps differ in cost (training dominates), so the estimate improves as a run goes on.
    """
    if not is_active(run_status):
        return finished_at
    if started_at is None:
        return None
    done = float(sum(s.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED) for s in steps))
    if running_fraction is not None and any(s.status == StepStatus.RUNNING for s in steps):
        done += min(max(running_fraction, 0.0), 1.0)
    if done <= 0:
        return None
    elapsed = (now - started_at).total_seconds()
    remaining = len(steps) - done
    return now + timedelta(seconds=max(elapsed, 0.0) / done * remaining)
