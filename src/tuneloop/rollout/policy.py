"""The rollout policy (pure): from a deployment's state and its checks to the next action.

Order of the rules (docs/decisions/0008-rollout.md):

1. any failed check (a rollback trigger) rolls back at once, whatever the hold time;
2. a canary holds its share until it is promoted by hand;
3. a step holds until its hold time (``increment_interval_hours``) has passed;
4. inconclusive checks hold (never advance on missing data) — until the step has waited
   ``Stall.after`` past its due time: it is then *stalled*, and ``Stall.action`` says
   whether it keeps holding (saying so, and raising ``tuneloop_rollout_stalled``) or rolls
   back (trigger ``rollout_stalled``);
5. otherwise traffic grows by ``increment_percentage``; reaching 100% completes the
   rollout (the caller flips ``champion``); at a ``max_traffic`` below 1 it holds there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from tuneloop.errors import InvalidInputError

_EPSILON = 1e-9


class Strategy(StrEnum):
    IMMEDIATE = "immediate"
    GRADUAL = "gradual_rollout"
    CANARY = "canary"


class Status(StrEnum):
    """``promoting`` and ``rolling_back`` wait only for the MLflow alias flip."""

    ROLLING_OUT = "rolling_out"
    PROMOTING = "promoting"
    COMPLETED = "completed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"


ACTIVE = (Status.ROLLING_OUT, Status.PROMOTING, Status.ROLLING_BACK)


class Action(StrEnum):
    ADVANCE = "advance"
    HOLD = "hold"
    ROLLBACK = "rollback"
    COMPLETE = "complete"


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class RolloutConfig:
    """The documented ``rollout_config``; a canary keeps ``initial_traffic``."""

    initial_traffic: float = 0.1
    increment_interval_hours: float = 24.0
    increment_percentage: float = 0.1
    max_traffic: float = 1.0

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 < self.initial_traffic <= 1.0:
            problems.append(f"initial_traffic must lie in (0, 1], got {self.initial_traffic}")
        if not 0.0 < self.increment_percentage <= 1.0:
            problems.append(
                f"increment_percentage must lie in (0, 1], got {self.increment_percentage}"
            )
        if not 0.0 < self.max_traffic <= 1.0:
            problems.append(f"max_traffic must lie in (0, 1], got {self.max_traffic}")
        if self.initial_traffic > self.max_traffic + _EPSILON:
            problems.append("initial_traffic cannot exceed max_traffic")
        if self.increment_interval_hours < 0:
            problems.append("increment_interval_hours cannot be negative")
        if problems:
            raise InvalidInputError("invalid rollout_config: " + "; ".join(problems))

    def next_traffic(self, current: float) -> float:
        return round(min(current + self.increment_percentage, self.max_traffic), 6)

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RolloutConfig:
        return cls(**{key: float(data[key]) for key in asdict(cls()) if key in data})


@dataclass(frozen=True)
class Guardrails:
    """Rollback triggers and how much data a check needs before it may pass or fail."""

    max_engagement_drop: float = 0.15
    max_error_rate: float = 0.05
    max_p95_latency_ms: float = 2000.0
    alpha: float = 0.05
    min_units: int = 100  # per model, before the engagement test is read
    min_generations: int = 100  # of the new model in the step, before error rate / latency

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Guardrails:
        defaults = asdict(cls())
        return cls(**{key: type(defaults[key])(data[key]) for key in defaults if key in data})

    def trigger_names(self) -> list[str]:
        """The documented ``monitoring.rollback_triggers`` names, for these thresholds."""
        return [
            f"engagement_rate_drop_{self.max_engagement_drop * 100:g}_percent",
            f"error_rate_above_{self.max_error_rate * 100:g}_percent",
            f"response_time_above_{self.max_p95_latency_ms:g}ms",
        ]


@dataclass(frozen=True)
class CheckResult:
    """One guardrail's verdict; ``trigger`` names the rollback trigger when it failed."""

    name: str
    verdict: Verdict
    reason: str
    trigger: str | None = None
    observed: dict[str, float | int | None] | None = None
    correction: str | None = None
    """The multiple-testing correction of a statistical check ("none": the engagement test is
    the rollout's only statistical guardrail, the others are thresholds); None otherwise."""

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": str(self.verdict)}


@dataclass(frozen=True)
class RolloutState:
    strategy: Strategy
    traffic: float
    step: int
    step_started_at: datetime
    config: RolloutConfig


@dataclass(frozen=True)
class Stall:
    """How long a due step may wait for conclusive data, and what happens then."""

    after: timedelta | None = timedelta(hours=72)  # None: never stalled
    action: str = "hold"  # "hold" or "rollback"


@dataclass(frozen=True)
class Decision:
    action: Action
    traffic: float  # the new model's share after the action
    reasons: tuple[str, ...]
    triggers: tuple[str, ...] = ()
    stalled: bool = False


def step_due(state: RolloutState) -> datetime:
    """When the current step's hold time is over (its earliest advance)."""
    return state.step_started_at + timedelta(hours=state.config.increment_interval_hours)


def decide(
    state: RolloutState,
    checks: Sequence[CheckResult],
    *,
    now: datetime,
    stall: Stall | None = None,
) -> Decision:
    """The next action for a rolling-out deployment (see the module docstring)."""
    failed = [c for c in checks if c.verdict is Verdict.FAIL]
    if failed:
        return Decision(
            Action.ROLLBACK,
            0.0,
            tuple(c.reason for c in failed),
            tuple(c.trigger or c.name for c in failed),
        )
    if state.strategy is Strategy.CANARY:
        return _hold(state, f"canary holds {state.traffic:.0%} until it is promoted")
    due = step_due(state)
    if now < due:
        return _hold(
            state, f"step {state.step} at {state.traffic:.0%} holds until {due:%Y-%m-%d %H:%M} UTC"
        )
    waiting = [f"inconclusive: {c.reason}" for c in checks if c.verdict is Verdict.INCONCLUSIVE]
    if waiting:
        after = (stall or Stall()).after
        if after is None or now - due < after:
            return _hold(state, *waiting)
        hours = (now - due).total_seconds() / 3600
        why = f"stalled: step {state.step} has waited {hours:.0f} h for conclusive data"
        if stall is not None and stall.action == "rollback":
            return Decision(Action.ROLLBACK, 0.0, (why, *waiting), ("rollout_stalled",), True)
        return Decision(Action.HOLD, state.traffic, (why, *waiting), stalled=True)
    target = state.config.next_traffic(state.traffic)
    if target >= 1.0 - _EPSILON:
        return Decision(Action.COMPLETE, 1.0, ("all checks passed; reached 100%",))
    if target <= state.traffic + _EPSILON:
        return _hold(state, f"at max_traffic {state.traffic:.0%}; promote to finish")
    return Decision(
        Action.ADVANCE, target, (f"all checks passed; {state.traffic:.0%} -> {target:.0%}",)
    )


def _hold(state: RolloutState, *reasons: str) -> Decision:
    return Decision(Action.HOLD, state.traffic, reasons)


def promotable(checks: Sequence[CheckResult]) -> list[str]:
    """Why a manual promotion must wait (empty: it may go ahead)."""
    return [f"{c.name}: {c.verdict}: {c.reason}" for c in checks if c.verdict is not Verdict.PASS]
