"""Power, MDE, sample size and ETA against statsmodels' NormalIndPower."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.power import NormalIndPower

from tuneloop.experiments.stats.errors import StatsError
from tuneloop.experiments.stats.moments import ArmStats
from tuneloop.experiments.stats.power import (
    Design,
    minimum_detectable_effect,
    power,
    required_sample_size,
    time_to_decision,
    unit_variance,
)

REL = 1e-6
STATSMODELS_ALTERNATIVE = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}
SIGMA = 2.0


def se_of(n1: float, n2: float) -> float:
    return SIGMA * math.sqrt(1 / n1 + 1 / n2)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize(
    ("n1", "ratio", "effect"), [(500, 1.0, 0.3), (2000, 0.25, 0.2), (80, 2, -0.5)]
)
def test_power_matches_statsmodels(alternative: str, n1: int, ratio: float, effect: float) -> None:
    expected = NormalIndPower().power(
        effect / SIGMA, n1, 0.05, ratio=ratio, alternative=STATSMODELS_ALTERNATIVE[alternative]
    )
    design = Design(alpha=0.05, alternative=alternative)  # type: ignore[arg-type]
    got = power(effect, std_error=se_of(n1, n1 * ratio), n=n1 * (1 + ratio), design=design)
    assert got == pytest.approx(expected, rel=REL)


@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
@pytest.mark.parametrize("target", [0.8, 0.9])
def test_minimum_detectable_effect_matches_statsmodels(alternative: str, target: float) -> None:
    n1, sm_alternative = 1500, STATSMODELS_ALTERNATIVE[alternative]
    design = Design(alternative=alternative)  # type: ignore[arg-type]
    mde = minimum_detectable_effect(
        std_error=se_of(n1, n1), n=2 * n1, target_power=target, design=design
    )
    # statsmodels' own power function gives exactly the target at our MDE ...
    at_mde = NormalIndPower().power(mde / SIGMA, n1, 0.05, ratio=1.0, alternative=sm_alternative)
    assert at_mde == pytest.approx(target, rel=1e-9)
    # ... and its solver (whose root-finding tolerance is loose, ~1e-5) lands next to it
    solved = NormalIndPower().solve_power(
        nobs1=n1, alpha=0.05, power=target, ratio=1.0, alternative=sm_alternative
    )
    assert mde / SIGMA == pytest.approx(solved, rel=1e-4)


@pytest.mark.parametrize("effect", [0.1, 0.25])
def test_required_sample_size_matches_statsmodels(effect: float) -> None:
    nobs1 = NormalIndPower().solve_power(effect_size=effect / SIGMA, alpha=0.05, power=0.8)
    control = ArmStats(n=0, mean=10.0, variance=SIGMA**2)
    variance = unit_variance(control, effect=effect, difference="absolute")
    total = required_sample_size(effect, unit_variance=variance, target_power=0.8)
    assert isinstance(total, float)
    assert total == pytest.approx(2 * nobs1, rel=REL)
    assert NormalIndPower().power(effect / SIGMA, total / 2, 0.05) == pytest.approx(0.8, rel=1e-9)


def test_relative_unit_variance_is_the_delta_method_at_the_planned_split() -> None:
    control = ArmStats(n=0, mean=0.05, variance=0.05 * 0.95)
    s2 = unit_variance(control, effect=0.2, weights=(0.9, 0.1), proportion=True)
    p_b = 0.06
    expected = p_b * (1 - p_b) / (0.05**2 * 0.1) + 0.05 * 0.95 * p_b**2 / (0.05**4 * 0.9)
    assert s2 == pytest.approx(expected, rel=1e-12)


def test_peeking_safely_costs_sample_size_and_power() -> None:
    control = ArmStats(n=0, mean=0.05, variance=0.05 * 0.95)
    s2 = unit_variance(control, effect=0.15, proportion=True)
    fixed = required_sample_size(0.15, unit_variance=s2)
    sequential = required_sample_size(0.15, unit_variance=s2, design=Design(method="sequential"))
    assert isinstance(fixed, float)
    assert isinstance(sequential, float)
    assert 1.2 * fixed < sequential < 5 * fixed
    se = math.sqrt(s2 / sequential)
    assert power(0.15, std_error=se, n=sequential, design=Design(method="sequential")) == (
        pytest.approx(0.8, rel=1e-6)
    )


def test_no_effect_or_wrong_direction_is_unreachable() -> None:
    assert required_sample_size(0.0, unit_variance=1.0) == StatsError.UNREACHABLE
    greater = Design(alternative="greater")
    assert required_sample_size(-0.1, unit_variance=1.0, design=greater) == StatsError.UNREACHABLE


def test_time_to_decision_extrapolates_the_traffic_rate() -> None:
    eta = time_to_decision(required_units=10000, current_units=2500, elapsed_hours=24)
    assert eta.error is None
    assert eta.hours == pytest.approx(72.0)
    assert eta.days == pytest.approx(3.0)
    assert eta.remaining_units == 7500
    assert time_to_decision(required_units=100, current_units=500, elapsed_hours=5).hours == 0
    no_traffic = time_to_decision(required_units=100, current_units=0, elapsed_hours=5)
    assert no_traffic.error == StatsError.NO_TRAFFIC
