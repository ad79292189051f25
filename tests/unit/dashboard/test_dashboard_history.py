"""The experiment's earlier looks: a fixed grid, at most the asked number, each analyzed once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tuneloop.dashboard.charts import Interval
from tuneloop.dashboard.history import cutoffs, looks

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_the_grid_is_the_finest_that_fits_and_keeps_the_latest_moments() -> None:
    assert cutoffs(START, START + timedelta(seconds=4), most=12) == [
        START + timedelta(seconds=s) for s in (1, 2, 3)
    ]
    week = cutoffs(START, START + timedelta(days=7), most=12)
    assert week[0] == START + timedelta(days=1) and len(week) == 6  # daily, before the end
    long = cutoffs(START, START + timedelta(days=400), most=12)
    assert len(long) == 11 and long[-1] < START + timedelta(days=400)
    assert cutoffs(START, START, most=12) == []


def test_a_past_look_is_analyzed_once_across_refreshes() -> None:
    asked: list[datetime] = []

    def look(until: datetime) -> Interval | None:
        asked.append(until)
        return Interval((until - START).total_seconds(), 0.1, 0.0, 0.2)

    end = START + timedelta(hours=3, minutes=10)
    first = looks("t", "unique-key-1", start=START, end=end, most=12, look=look)
    again = looks(
        "t", "unique-key-1", start=START, end=end + timedelta(seconds=5), most=12, look=look
    )
    assert first == again and len(first) == 6  # every 30 min
    assert len(asked) == len(set(asked)) == 6  # the second refresh asked nothing new
