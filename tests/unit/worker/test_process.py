"""The worker's clock from settings: the wall clock, or a scaled one for trials and demos."""

from __future__ import annotations

from tuneloop.config import Settings
from tuneloop.domain.clock import ScaledClock, SystemClock
from tuneloop.worker.process import clock_for


def test_clock_speed_one_is_the_wall_clock_and_more_is_scaled() -> None:
    assert isinstance(clock_for(Settings()), SystemClock)
    scaled = clock_for(Settings(worker={"clock_speed": 3600}))
    assert isinstance(scaled, ScaledClock) and scaled.speed == 3600
