"""Worker ticks on a ManualClock over the real store: schedule fires once, triggers, leaders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from worker_helpers import TENANT, RecordingActions, finish, quiet

from tuneloop.config import Settings
from tuneloop.domain.clock import ManualClock
from tuneloop.domain.runs import Trigger
from tuneloop.store import leases
from tuneloop.store.db import make_engine
from tuneloop.store.schedules import claim_fire, count_fires
from tuneloop.worker.loop import TickReport, Worker

SATURDAY = datetime(2027, 3, 6, 12, tzinfo=UTC)
SUNDAY_2AM = datetime(2027, 3, 7, 2, tzinfo=UTC)


def worker(engine: Engine, settings: Settings, clock: ManualClock, name: str = "w1") -> Worker:
    return Worker(engine, settings, RecordingActions(engine, clock), clock=clock, holder=name)


def started(w: Worker) -> list[tuple[str, Trigger, str]]:
    assert isinstance(w.actions, RecordingActions)
    return w.actions.started


def test_a_scheduled_run_starts_exactly_once_per_fire(engine: Engine, settings: Settings) -> None:
    clock = ManualClock(SATURDAY)
    w = worker(engine, quiet(settings), clock)
    assert w.tick().started == {}  # first sight of the tenant: last week's fire does not count
    clock.set(SUNDAY_2AM - timedelta(seconds=1))
    assert w.tick().started == {}
    clock.set(SUNDAY_2AM)
    report = w.tick()
    assert report.leader and list(report.started) == [TENANT]
    ((tenant, trigger, run_id),) = started(w)
    assert trigger == Trigger.SCHEDULE
    for minutes in (1, 30, 600):  # active, then finished: the claimed fire never runs again
        if minutes == 30:
            finish(engine, tenant, run_id)
        clock.set(SUNDAY_2AM + timedelta(minutes=minutes))
        assert w.tick().started == {}
    assert count_fires(engine, TENANT) == 1
    clock.set(SUNDAY_2AM + timedelta(days=7))
    w.tick()
    assert [t for _, t, _ in started(w)] == [Trigger.SCHEDULE, Trigger.SCHEDULE]
    lease = leases.read_lease(engine)
    assert lease is not None and lease.last_tick_at == SUNDAY_2AM + timedelta(days=7)


def test_after_a_week_of_downtime_the_missed_fires_start_one_run(
    engine: Engine, settings: Settings
) -> None:
    clock = ManualClock(SATURDAY)
    w = worker(engine, quiet(settings), clock)
    w.tick()
    clock.set(SUNDAY_2AM + timedelta(days=14, hours=7))  # down over three Sunday fires
    w.tick()
    ((_, trigger, run_id),) = started(w)
    assert trigger == Trigger.SCHEDULE
    finish(engine, TENANT, run_id)
    for hours in (1, 2, 48):
        clock.advance(timedelta(hours=hours))
        w.tick()
    assert len(started(w)) == 1
    assert count_fires(engine, TENANT) == 1


def test_the_schedule_reads_in_its_time_zone_across_the_spring_change(
    engine: Engine, settings: Settings
) -> None:
    berlin = quiet(settings).model_copy(
        update={"pipeline": settings.pipeline.model_copy(update={"timezone": "Europe/Berlin"})}
    )
    clock = ManualClock(datetime(2027, 3, 27, 12, tzinfo=UTC))
    w = worker(engine, berlin, clock)
    w.tick()
    clock.set(datetime(2027, 3, 28, 0, 59, tzinfo=UTC))  # 01:59 CET
    assert w.tick().started == {}
    clock.set(datetime(2027, 3, 28, 1, 0, tzinfo=UTC))  # 03:00 CEST: 02:00 never happened
    assert list(w.tick().started) == [TENANT]


def test_two_workers_one_leads_and_a_killed_leader_is_replaced_within_one_lease(
    engine: Engine, settings: Settings
) -> None:
    clock = ManualClock(SATURDAY)
    own = make_engine(settings.database_url, settings.database)  # as another process would
    try:
        config = quiet(settings)
        first = Worker(
            engine,
            config,
            RecordingActions(engine, clock),
            clock=clock,
            holder="first",
            lease_seconds=30,
        )
        second = Worker(
            own,
            config,
            RecordingActions(own, clock),
            clock=clock,
            holder="second",
            lease_seconds=30,
        )
        for _ in range(3):
            reports = [first.tick(), second.tick()]
            assert [r.leader for r in reports] == [True, False]
            clock.advance(timedelta(seconds=10))
        assert isinstance(second.actions, RecordingActions)
        assert second.actions.advanced == 0 and second.actions.rollout_ticks == 0
        # first is killed (stops ticking) right after its last renewal, 10 s ago.
        clock.advance(timedelta(seconds=19))
        assert not second.tick().leader
        clock.advance(timedelta(seconds=1))  # one lease period after the last renewal
        assert second.tick().leader
        assert second.actions.advanced == 1
        assert not first.tick().leader  # back from the dead: it follows
    finally:
        own.dispose()


def test_a_fire_starts_one_run_even_if_two_workers_both_act_on_it(
    engine: Engine, settings: Settings
) -> None:
    """Belt and braces for a leader that stalled past its lease: the fire's unique row."""
    clock = ManualClock(SATURDAY)
    config = quiet(settings)
    first, second = worker(engine, config, clock, "first"), worker(engine, config, clock, "second")
    first.tick()
    clock.set(SUNDAY_2AM)
    first_report, second_report = TickReport(True, "a"), TickReport(True, "b")
    first.check_tenant(TENANT, first_report)
    finish(engine, TENANT, started(first)[0][2])  # even with no active run left to block it
    second.check_tenant(TENANT, second_report)
    assert list(first_report.started) == [TENANT] and second_report.started == {}
    assert started(second) == [] and count_fires(engine, TENANT) == 1
    # Had the second read the state before the first claimed, its claim would lose:
    assert not claim_fire(engine, TENANT, SUNDAY_2AM, by="second", now=SUNDAY_2AM)


class FailingOnce(RecordingActions):
    def start_run(self, tenant: str, trigger: Trigger) -> str:
        if not getattr(self, "failed", False):
            self.failed = True
            raise RuntimeError("database blip")
        return super().start_run(tenant, trigger)


def test_a_fire_whose_start_failed_stays_due_for_the_next_tick(
    engine: Engine, settings: Settings
) -> None:
    clock = ManualClock(SATURDAY)
    w = Worker(engine, quiet(settings), FailingOnce(engine, clock), clock=clock, holder="w")
    w.tick()
    clock.set(SUNDAY_2AM)
    report = w.tick()
    assert report.started == {} and "database blip" in report.errors[0]
    assert count_fires(engine, TENANT) == 0
    clock.advance(timedelta(seconds=30))
    assert list(w.tick().started) == [TENANT]
    assert count_fires(engine, TENANT) == 1
