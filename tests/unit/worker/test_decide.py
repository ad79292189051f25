"""Whether a run starts now, and why: precedence, active runs, the cool-down."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tuneloop.domain.runs import Trigger
from tuneloop.worker.decide import TenantState, decide
from tuneloop.worker.triggers import Reading, data_reading, freshness_reading

NOW = datetime(2027, 3, 7, 3, tzinfo=UTC)
FIRE = datetime(2027, 3, 7, 2, tzinfo=UTC)
DRIFT = Reading(Trigger.DRIFT, -0.3, -0.15, True, "dropped 15%")


def state(**changes: object) -> TenantState:
    base = TenantState(
        tenant_id="acme",
        now=NOW,
        cron="0 2 * * 0",
        timezone="UTC",
        next_fire=FIRE + timedelta(days=7),
        due_fire=None,
        active_run=None,
        last_run_at=None,
        cooldown=timedelta(hours=24),
        readings=(data_reading(10, 100), freshness_reading(None, NOW, 30)),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_nothing_holds_nothing_starts() -> None:
    verdict = decide(state())
    assert not verdict.start and verdict.trigger is None
    assert verdict.reasons == ("no trigger holds and the schedule is not due",)


def test_a_due_fire_starts_a_scheduled_run_and_names_the_fire() -> None:
    verdict = decide(state(due_fire=FIRE))
    assert verdict.start and verdict.trigger == Trigger.SCHEDULE and verdict.fire_at == FIRE


def test_the_schedule_wins_then_drift_then_data_then_freshness() -> None:
    all_fire = (data_reading(500, 100), DRIFT, freshness_reading(NOW - timedelta(days=99), NOW, 30))
    assert decide(state(due_fire=FIRE, readings=all_fire)).trigger == Trigger.SCHEDULE
    assert decide(state(readings=all_fire)).trigger == Trigger.DRIFT
    assert decide(state(readings=all_fire[::2])).trigger == Trigger.DATA
    assert decide(state(readings=all_fire[2:])).trigger == Trigger.FRESHNESS


def test_an_active_run_blocks_and_says_so() -> None:
    verdict = decide(state(due_fire=FIRE, active_run="ft-pipeline-20270307-001"))
    assert not verdict.start and verdict.trigger == Trigger.SCHEDULE
    assert "run ft-pipeline-20270307-001 is active" in verdict.reasons


def test_the_cool_down_blocks_until_it_has_passed() -> None:
    readings = (data_reading(500, 100),)
    recent = decide(state(readings=readings, last_run_at=NOW - timedelta(hours=23)))
    assert not recent.start and recent.reasons[-1] == "cool-down: 1.0 h left"
    assert decide(state(readings=readings, last_run_at=NOW - timedelta(hours=24))).start
