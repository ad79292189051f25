"""Should a tenant's run start now, and why: the pure decision over what the worker read.

Order of precedence when several hold: a due schedule fire (it is claimed, once), then
drift (the champion is getting worse), data, freshness. Nothing starts while a run is
active or during the cool-down after the last run's start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tuneloop.domain.runs import Trigger
from tuneloop.worker.triggers import Reading

PRECEDENCE = (Trigger.DRIFT, Trigger.DATA, Trigger.FRESHNESS)


@dataclass(frozen=True)
class TenantState:
    """Everything the decision needs about one tenant, read at ``now``."""

    tenant_id: str
    now: datetime
    cron: str
    timezone: str
    next_fire: datetime
    due_fire: datetime | None
    active_run: str | None
    last_run_at: datetime | None
    cooldown: timedelta
    readings: tuple[Reading, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Verdict:
    start: bool
    trigger: Trigger | None
    fire_at: datetime | None  # the schedule fire to claim when trigger is schedule
    reasons: tuple[str, ...]


def cooldown_left(state: TenantState) -> timedelta:
    if state.last_run_at is None:
        return timedelta(0)
    return max(timedelta(0), state.last_run_at + state.cooldown - state.now)


def wanted(state: TenantState) -> tuple[Trigger, datetime | None, str] | None:
    """The trigger that asks for a run, ignoring what could block it."""
    if state.due_fire is not None:
        why = f"schedule fired at {state.due_fire:%Y-%m-%d %H:%M} UTC"
        return Trigger.SCHEDULE, state.due_fire, why
    by_trigger = {reading.trigger: reading for reading in state.readings}
    for trigger in PRECEDENCE:
        reading = by_trigger.get(trigger)
        if reading is not None and reading.fires:
            return trigger, None, f"{trigger}: {reading.detail}"
    return None


def decide(state: TenantState) -> Verdict:
    """Start a run now? With the trigger to record and the reasons either way."""
    asked = wanted(state)
    if asked is None:
        return Verdict(False, None, None, ("no trigger holds and the schedule is not due",))
    trigger, fire_at, why = asked
    if state.active_run is not None:
        return Verdict(False, trigger, fire_at, (why, f"run {state.active_run} is active"))
    left = cooldown_left(state)
    if left > timedelta(0):
        hours = left / timedelta(hours=1)
        return Verdict(False, trigger, fire_at, (why, f"cool-down: {hours:.1f} h left"))
    return Verdict(True, trigger, fire_at, (why,))
