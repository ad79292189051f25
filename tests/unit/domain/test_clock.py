"""The injectable clocks: manual time moves only when told, scaled time runs faster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tuneloop.domain.clock import ManualClock, ScaledClock, SystemClock


def test_manual_clock_moves_only_when_advanced() -> None:
    clock = ManualClock(datetime(2026, 3, 29, 0, 30, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert clock.advance(timedelta(days=7)) == datetime(2026, 4, 5, 0, 30, tzinfo=UTC)
    assert clock.now().tzinfo is not None


def test_manual_clock_refuses_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))


def test_scaled_clock_starts_at_its_start_and_never_goes_back() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = ScaledClock(3600.0, start=start)
    first = clock.now()
    assert start <= first < start + timedelta(hours=1)
    assert clock.now() >= first
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(0)


def test_system_clock_is_aware_utc() -> None:
    assert SystemClock().now().utcoffset() == timedelta(0)
