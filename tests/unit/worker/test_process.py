"""The worker's clock from settings: the wall clock, or a scaled one with a stretched lease."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import create_engine

from tuneloop.config import Settings
from tuneloop.domain.clock import ScaledClock, SystemClock
from tuneloop.worker.loop import Worker
from tuneloop.worker.process import clock_for


class NoActions:
    def tenants(self) -> list[str]:
        return []


def test_clock_speed_one_is_the_wall_clock_and_more_is_scaled() -> None:
    assert isinstance(clock_for(Settings()), SystemClock)
    scaled = clock_for(Settings(worker={"clock_speed": 3600}))
    assert isinstance(scaled, ScaledClock) and scaled.speed == 3600


def test_on_a_scaled_clock_the_lease_lasts_lease_seconds_of_real_time() -> None:
    engine = create_engine("sqlite://")  # never touched by the constructor
    settings = Settings(worker={"clock_speed": 60, "lease_seconds": 5})
    worker = Worker(engine, settings, NoActions(), clock=clock_for(settings))  # type: ignore[arg-type]
    assert worker.ttl == timedelta(minutes=5)
    wall = Worker(engine, Settings(), NoActions(), clock=SystemClock())  # type: ignore[arg-type]
    assert wall.ttl == timedelta(seconds=90)
    engine.dispose()
