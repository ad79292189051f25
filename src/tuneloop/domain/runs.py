"""Pipeline run and step states, the allowed transitions, and the step order."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    # Between two checks of a step that waits for the world (an A/B test deciding, a
    # rollout advancing): no process, no lease; ``app.runs.advance_runs`` checks it again.
    WAITING = "waiting"
    ABORTING = "aborting"
    SUCCEEDED = "succeeded"  # a run of the first half only (runs made before the loop)
    NOT_ENOUGH_DATA = "not_enough_data"
    NO_NEW_DATA = "no_new_data"  # the dataset equals the champion's or the last candidate's
    GATED = "gated"  # offline evaluation said no: no A/B test
    REJECTED = "rejected"  # the A/B test said no
    INCONCLUSIVE = "inconclusive"  # the A/B test ended without an answer
    PROMOTED = "promoted"  # the candidate became champion
    ROLLED_BACK = "rolled_back"  # its rollout was rolled back (a trigger fired, or by hand)
    FAILED = "failed"
    ABORTED = "aborted"


ACTIVE = frozenset({RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING, RunStatus.ABORTING})
FINISHED = frozenset(set(RunStatus) - ACTIVE)

# How a run may end from RUNNING.
_ENDINGS = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.NOT_ENOUGH_DATA,
        RunStatus.NO_NEW_DATA,
        RunStatus.GATED,
        RunStatus.REJECTED,
        RunStatus.INCONCLUSIVE,
        RunStatus.PROMOTED,
        RunStatus.ROLLED_BACK,
        RunStatus.FAILED,
        RunStatus.ABORTED,
    }
)

TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.PENDING: frozenset({RunStatus.RUNNING, RunStatus.ABORTED, RunStatus.FAILED}),
    RunStatus.RUNNING: _ENDINGS | {RunStatus.ABORTING, RunStatus.RUNNING, RunStatus.WAITING},
    RunStatus.WAITING: frozenset({RunStatus.RUNNING, RunStatus.ABORTING, RunStatus.FAILED}),
    RunStatus.ABORTING: frozenset({RunStatus.ABORTED, RunStatus.FAILED}),
    # A failed run may be continued by `tuneloop run` (its finished steps are kept).
    RunStatus.FAILED: frozenset({RunStatus.RUNNING}),
}


# A run (or step) error that starts with this failed for an outside system's outage that
# outlasted ``mlflow.outage_wait_seconds``: nothing is wrong with the run, so a worker may
# simply continue it later (``is_retryable``).
RETRYABLE = "retryable: "


def is_retryable(error: str | None) -> bool:
    """Whether a failed run's ``error`` says it failed for an outage (continue it later)."""
    return error is not None and error.startswith(RETRYABLE)


def can_move(current: RunStatus, target: RunStatus) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"  # checked, not done: checked again on the next advance
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"


class Trigger(StrEnum):
    MANUAL = "manual"
    SCHEDULE = "schedule"
    DATA = "data"
    DRIFT = "drift"
    FRESHNESS = "freshness"
    DEMO = "demo"


class Bootstrap(StrEnum):
    """What a run does with a candidate when its tenant has no champion yet."""

    PROMOTE = "promote"  # the first candidate that passes offline evaluation is champion
    MANUAL = "manual"  # the run waits until someone runs `tuneloop models promote`


# The whole loop: the first half runs in one go; from `experiment` on the run may wait.
STEPS: tuple[str, ...] = (
    "collect",
    "train",
    "register",
    "evaluate",
    "experiment",
    "decide",
    "rollout",
)

# How the documented /fine-tuning/status progress names map onto steps.
STAGE_OF_STEP = {
    "collect": "data_collection",
    "train": "model_training",
    "register": "model_training",
    "evaluate": "evaluation",
    "experiment": "evaluation",
    "decide": "evaluation",
    "rollout": "deployment",
}
