"""Pipeline run and step states, the allowed transitions, and the step order."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    ABORTING = "aborting"
    SUCCEEDED = "succeeded"
    NOT_ENOUGH_DATA = "not_enough_data"
    GATED = "gated"  # offline evaluation said no: no A/B test
    FAILED = "failed"
    ABORTED = "aborted"


ACTIVE = frozenset({RunStatus.PENDING, RunStatus.RUNNING, RunStatus.ABORTING})
FINISHED = frozenset(set(RunStatus) - ACTIVE)

TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.PENDING: frozenset({RunStatus.RUNNING, RunStatus.ABORTED, RunStatus.FAILED}),
    RunStatus.RUNNING: frozenset(
        {
            RunStatus.ABORTING,
            RunStatus.SUCCEEDED,
            RunStatus.NOT_ENOUGH_DATA,
            RunStatus.GATED,
            RunStatus.FAILED,
            RunStatus.ABORTED,
            RunStatus.RUNNING,
        }
    ),
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
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"


class Trigger(StrEnum):
    MANUAL = "manual"
    SCHEDULE = "schedule"
    DATA = "data"
    DRIFT = "drift"
    FRESHNESS = "freshness"


# The loop's first half; later stages append experiment and rollout steps.
STEPS: tuple[str, ...] = ("collect", "train", "register", "evaluate")

# How the documented /fine-tuning/status progress names map onto steps.
STAGE_OF_STEP = {
    "collect": "data_collection",
    "train": "model_training",
    "register": "model_training",
    "evaluate": "evaluation",
}
