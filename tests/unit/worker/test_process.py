"""The worker's clock from settings: the wall clock, or a scaled one for trials and demos."""

from __future__ import annotations

from tuneloop.config import Settings
from tuneloop.domain.clock import ScaledClock, SystemClock
from tuneloop.worker.process import clock_for


def test_clock_speed_one_is_the_wall_clock_and_more_is_scaled() -> None:
    assert isinstance(clock_for(Settings()), SystemClock)
    scaled = clock_for(Settings(worker={"clock_speed": 3600}))
    assert isinstance(scaled, ScaledClock) and scaled.speed == 3600


def test_one_scaled_clock_per_process_so_the_api_and_the_worker_agree() -> None:
    """``tuneloop serve`` builds its API container and its worker apart: they must share
    one scaled clock, or a second between the two starts is an hour apart at speed 3600."""
    trial = Settings(worker={"clock_speed": 7200})
    assert clock_for(trial) is clock_for(trial.model_copy())
    assert clock_for(Settings(worker={"clock_speed": 7201})) is not clock_for(trial)
