"""Cron fires in the schedule's own time zone: DST changes, downtime catch-up, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from tuneloop.config import PipelineSettings, Settings, WorkerSettings
from tuneloop.worker.schedule import check_cron, due_fire, latest_fire, next_fire

WEEKLY = "0 2 * * 0"  # Sundays 02:00
BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(cron: str, zone: str, start: datetime, count: int) -> list[datetime]:
    found, at = [], start
    for _ in range(count):
        at = next_fire(cron, zone, at)
        found.append(at)
    return found


def test_weekly_fires_at_two_local_across_the_spring_change() -> None:
    # 2027-03-28: Berlin skips 02:00-03:00 (CET +1 -> CEST +2).
    got = fires(WEEKLY, BERLIN, utc(2027, 3, 15), 3)
    assert got == [
        utc(2027, 3, 21, 1),  # 02:00 CET
        utc(2027, 3, 28, 1),  # 02:00 does not exist: fires at 03:00 CEST, once
        utc(2027, 4, 4, 0),  # 02:00 CEST
    ]


def test_weekly_fires_once_across_the_autumn_change() -> None:
    # 2027-10-31: Berlin repeats 02:00-03:00 (CEST +2 -> CET +1); 02:00 happens twice.
    got = fires(WEEKLY, BERLIN, utc(2027, 10, 20), 3)
    assert got == [utc(2027, 10, 24, 0), utc(2027, 10, 31, 0), utc(2027, 11, 7, 1)]
    daily = fires("30 2 * * *", BERLIN, utc(2027, 10, 30), 3)
    assert daily == [utc(2027, 10, 30, 0, 30), utc(2027, 10, 31, 0, 30), utc(2027, 11, 1, 1, 30)]


def test_latest_fire_includes_the_instant_itself() -> None:
    assert latest_fire(WEEKLY, "UTC", utc(2027, 4, 4, 2)) == utc(2027, 4, 4, 2)
    assert latest_fire(WEEKLY, "UTC", utc(2027, 4, 4, 1, 59)) == utc(2027, 3, 28, 2)


def test_a_fire_is_due_once_and_only_after_the_anchor() -> None:
    anchor = utc(2027, 3, 1)
    before = utc(2027, 3, 7, 1, 59)
    assert due_fire(WEEKLY, "UTC", now=before, anchor=anchor, last_claimed=None) is None
    at = utc(2027, 3, 7, 2)
    assert due_fire(WEEKLY, "UTC", now=at, anchor=anchor, last_claimed=None) == at
    later = at + timedelta(hours=5)
    assert due_fire(WEEKLY, "UTC", now=later, anchor=anchor, last_claimed=at) is None
    # A schedule first seen after last Sunday's fire does not fire for it.
    assert (
        due_fire(WEEKLY, "UTC", now=later, anchor=at + timedelta(minutes=1), last_claimed=None)
        is None
    )


def test_after_a_week_or_more_of_downtime_only_the_latest_missed_fire_is_due() -> None:
    claimed = utc(2027, 3, 7, 2)
    back = utc(2027, 3, 29, 9)  # three Sundays missed
    due = due_fire(WEEKLY, "UTC", now=back, anchor=utc(2027, 3, 1), last_claimed=claimed)
    assert due == utc(2027, 3, 28, 2)
    assert due_fire(WEEKLY, "UTC", now=back, anchor=utc(2027, 3, 1), last_claimed=due) is None


@pytest.mark.parametrize("bad", ["99 99 99 99 99", "0 2 * *", "0 2 * * 0 0", "every sunday"])
def test_invalid_cron_is_refused_at_the_settings_edge(bad: str) -> None:
    with pytest.raises(ValueError, match="cron"):
        check_cron(bad)
    with pytest.raises(ValidationError, match="cron"):
        PipelineSettings(weekly_schedule=bad)


def test_time_zones_are_checked_and_the_worker_zone_is_optional() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        PipelineSettings(timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="time zone"):
        WorkerSettings(timezone="Nowhere")
    assert Settings().worker.timezone is None
    assert Settings().pipeline.timezone == "UTC"
    assert check_cron(" 0  2 * *  0 ") == WEEKLY
