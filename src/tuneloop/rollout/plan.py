"""A rollout's plan as a person reads it: each step's share, earliest start, what it waits for.

Pure: computed from the deployment's stored config, guardrails and current step, so
``deployments show`` and ``GET /deployment/{id}`` answer "when does it move, and on what?"
right after a deploy. Times are lower bounds: a step also waits for conclusive data.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tuneloop.rollout.policy import Guardrails, RolloutConfig, Strategy

_EPSILON = 1e-9
MAX_STEPS = 100


def rollout_plan(
    *,
    strategy: str,
    status: str,
    traffic: float,
    step: int,
    step_started_at: datetime,
    config: RolloutConfig,
    guardrails: Guardrails,
    stall_after: timedelta | None,
) -> list[dict[str, Any]]:
    """The current step and the ones after it (empty once the rollout is over)."""
    if status != "rolling_out":
        return []
    interval = timedelta(hours=config.increment_interval_hours)
    data = [
        f"engagement of at least {guardrails.min_units} units on each model, "
        f"not more than {guardrails.max_engagement_drop:.0%} below the previous model",
        f"at least {guardrails.min_generations} generations of the new model in the step, "
        f"error rate <= {guardrails.max_error_rate:.0%}, "
        f"p95 latency <= {guardrails.max_p95_latency_ms:.0f} ms",
    ]
    if strategy == Strategy.CANARY:
        return [_step(step, traffic, step_started_at, None, ["a promotion by hand", *data])]
    steps, share, start = [], traffic, step_started_at
    for number in range(step, step + MAX_STEPS):
        due = start + interval
        waits = [f"the hold time ({config.increment_interval_hours:g} h)", *data]
        if number == step and stall_after is not None:
            waits.append(f"stalled if still inconclusive at {_iso(due + stall_after)}")
        steps.append(_step(number, share, start, due, waits))
        following = config.next_traffic(share)
        if following >= 1.0 - _EPSILON:
            steps.append(_step(number + 1, 1.0, due, None, ["completes: the champion flips"]))
            break
        if following <= share + _EPSILON:
            steps[-1]["waits_for"].append(f"at max_traffic {share:.0%}: a promotion by hand")
            break
        share, start = following, due
    return steps


def _step(
    number: int, traffic: float, start: datetime, due: datetime | None, waits: list[str]
) -> dict[str, Any]:
    return {
        "step": number,
        "traffic": traffic,
        "earliest_start": _iso(start),
        "earliest_advance": None if due is None else _iso(due),
        "waits_for": waits,
    }


def _iso(value: datetime) -> str:
    return value.isoformat()
