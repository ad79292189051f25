"""Each trigger fires at its threshold and not below; drift is decided by the sequential test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tuneloop.domain.experiments import Moments
from tuneloop.domain.runs import Trigger
from tuneloop.worker.triggers import data_reading, drift_reading, freshness_reading

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)


def test_data_fires_at_its_threshold_and_not_below() -> None:
    assert data_reading(100, 100).fires
    assert data_reading(250, 100).fires
    below = data_reading(99, 100)
    assert not below.fires and below.value == 99 and below.threshold == 100
    assert below.detail == "99 new qualifying posts < 100"
    assert not data_reading(10_000, None).fires  # switched off


def test_freshness_fires_past_the_age_and_not_at_or_below() -> None:
    assert freshness_reading(NOW - timedelta(days=30, seconds=1), NOW, 30).fires
    assert not freshness_reading(NOW - timedelta(days=30), NOW, 30).fires
    assert not freshness_reading(NOW - timedelta(days=29), NOW, 30).fires
    assert freshness_reading(None, NOW, 30).detail == "no champion yet"
    assert not freshness_reading(NOW - timedelta(days=400), NOW, None).fires


def moments(values: np.ndarray) -> Moments:
    return Moments(int(values.size), float(values.sum()), float((values * values).sum()))


def units(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Per-unit mean engagement: each unit's share of 10 impressions engaged."""
    return rng.binomial(10, rate, size=n) / 10.0


def test_drift_needs_enough_units_in_both_windows() -> None:
    rng = np.random.default_rng(1)
    reading = drift_reading(
        moments(units(rng, 500, 0.1)),
        moments(units(rng, 50, 0.01)),  # a huge drop, on too few units
        drop=0.15,
        alpha=0.05,
        min_units=100,
    )
    assert not reading.fires and "100 needed each" in reading.detail


@pytest.mark.parametrize(("true_drop", "fires"), [(0.40, True), (0.05, False), (0.0, False)])
def test_drift_fires_on_a_drop_beyond_the_threshold_and_not_on_a_smaller_one(
    true_drop: float, fires: bool
) -> None:
    rng = np.random.default_rng(7)
    baseline = moments(units(rng, 20_000, 0.10))
    recent = moments(units(rng, 20_000, 0.10 * (1 - true_drop)))
    reading = drift_reading(baseline, recent, drop=0.15, alpha=0.05, min_units=100)
    assert reading.trigger == Trigger.DRIFT
    assert reading.fires is fires, reading.detail
    assert reading.value == pytest.approx(-true_drop, abs=0.03)


def test_an_a_a_stream_watched_every_tick_triggers_drift_no_more_often_than_alpha() -> None:
    """Recent and baseline come from the same engagement; the worker looks 20 times as the
    recent window fills. The always-valid interval keeps the chance of any false fire
    below alpha even at a tiny threshold; the point estimate would fire about half the time.
    """
    rng = np.random.default_rng(20261205)
    alpha, simulations, looks, per_look = 0.05, 400, 20, 50
    fired = point_estimate_fired = 0
    for _ in range(simulations):
        baseline = moments(units(rng, 2_000, 0.06))
        stream = units(rng, looks * per_look, 0.06)
        any_fire = any_point = False
        for look in range(1, looks + 1):
            recent = moments(stream[: look * per_look])
            reading = drift_reading(baseline, recent, drop=1e-4, alpha=alpha, min_units=20)
            any_fire |= reading.fires
            any_point |= reading.value is not None and reading.value <= -1e-4
        fired += any_fire
        point_estimate_fired += any_point
    assert fired / simulations <= alpha
    assert point_estimate_fired / simulations > 0.3  # the test above could have failed
