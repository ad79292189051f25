"""Always-valid intervals against gbstats (0.8.0 two-sided; current source one-sided)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gbstats_reference import (
    GB_CONTROL,
    GB_TREATMENT,
    gb_statistics,
    gb_tests,
    requires_gbstats,
    sequential_one_sided_interval,
    sequential_one_sided_p_value,
)

from tuneloop.experiments.stats.errors import StatsError
from tuneloop.experiments.stats.frequentist import Alternative, Difference, t_test
from tuneloop.experiments.stats.moments import ArmStats, mean_stats, proportion_stats
from tuneloop.experiments.stats.sequential import (
    halfwidth_one_sided,
    sequential_rho,
    sequential_test,
)

REL = 1e-6
CONTROL = mean_stats(GB_CONTROL["n"], GB_CONTROL["sum"], GB_CONTROL["sum_squares"])
TREATMENT = mean_stats(GB_TREATMENT["n"], GB_TREATMENT["sum"], GB_TREATMENT["sum_squares"])

CASES = [
    (GB_CONTROL, GB_TREATMENT),
    (
        {"n": 800, "sum": 2100.0, "sum_squares": 9800.0},
        {"n": 790, "sum": 2500.0, "sum_squares": 12900.0},
    ),
    ({"n": 20000, "successes": 1100}, {"n": 20100, "successes": 1290}),
]


def arm(raw: dict) -> ArmStats:
    if "successes" in raw:
        return proportion_stats(raw["n"], raw["successes"])
    return mean_stats(raw["n"], raw["sum"], raw["sum_squares"])


def gb_stat(raw: dict):
    assert gb_statistics is not None
    if "successes" in raw:
        return gb_statistics.ProportionStatistic(n=raw["n"], sum=raw["successes"])
    return gb_statistics.SampleMeanStatistic(**raw)


@requires_gbstats
@pytest.mark.parametrize(("control", "treatment"), CASES)
@pytest.mark.parametrize("difference", ["relative", "absolute"])
@pytest.mark.parametrize(("alpha", "tuning"), [(0.05, 5000), (0.1, 100), (0.01, 50000)])
def test_two_sided_matches_gbstats_release(
    control: dict, treatment: dict, difference: Difference, alpha: float, tuning: float
) -> None:
    assert gb_tests is not None
    config = gb_tests.SequentialConfig(
        difference_type=difference, alpha=alpha, sequential_tuning_parameter=tuning
    )
    expected = gb_tests.SequentialTwoSidedTTest(gb_stat(control), gb_stat(treatment), config)
    expected_result = expected.compute_result()
    result = sequential_test(
        arm(control), arm(treatment), difference=difference, alpha=alpha, tuning=tuning
    )
    assert result.estimate == pytest.approx(expected_result.expected, rel=REL)
    assert result.std_error == pytest.approx(expected_result.uplift.stddev, rel=REL)
    assert list(result.ci) == pytest.approx(list(expected_result.ci), rel=REL)
    assert result.p_value == pytest.approx(expected_result.p_value, rel=REL)
    assert sequential_rho(alpha, tuning) == pytest.approx(expected.rho, rel=1e-12)


# GrowthBook's published expectations (packages/stats/tests/frequentist/test_tests.py, 115869841)
@pytest.mark.parametrize(
    ("alternative", "difference", "ci"),
    [
        ("greater", "relative", (-0.42356454602790883, math.inf)),
        ("greater", "absolute", (-0.12656844172804982, math.inf)),
        ("less", "relative", (-math.inf, 1.4302867177403806)),
        ("less", "absolute", (-math.inf, 0.5953217750613832)),
    ],
)
def test_one_sided_intervals_match_the_current_gbstats_published_values(
    alternative: Alternative, difference: Difference, ci: tuple[float, float]
) -> None:
    result = sequential_test(CONTROL, TREATMENT, difference=difference, alternative=alternative)
    assert result.ci == pytest.approx(ci, rel=REL)


@pytest.mark.parametrize(("control", "treatment"), CASES)
@pytest.mark.parametrize("difference", ["relative", "absolute"])
@pytest.mark.parametrize("alternative", ["greater", "less"])
@pytest.mark.parametrize(("alpha", "tuning"), [(0.05, 5000), (0.2, 300)])
def test_one_sided_matches_the_transcribed_current_source(
    control: dict,
    treatment: dict,
    difference: Difference,
    alternative: Alternative,
    alpha: float,
    tuning: float,
) -> None:
    result = sequential_test(
        arm(control),
        arm(treatment),
        difference=difference,
        alpha=alpha,
        alternative=alternative,
        tuning=tuning,
    )
    assert result.estimate is not None
    assert result.std_error is not None
    n = arm(control).n + arm(treatment).n
    lesser = alternative == "less"
    expected_ci = sequential_one_sided_interval(
        result.estimate, result.std_error, n, alpha=alpha, tuning=tuning, lesser=lesser
    )
    assert result.ci == pytest.approx(expected_ci, rel=REL)
    p_value, (low, high) = sequential_one_sided_p_value(
        result.estimate, result.std_error, n, alpha=alpha, tuning=tuning, lesser=lesser
    )
    assert p_value is not None
    # gbstats bisects on [1e-5, 0.4999] and clamps there; we solve exactly: the exact root
    # lies in gbstats' final bracket, or beyond the clamp on the same side
    assert low <= result.p_value <= high or (p_value == 0.4999 and result.p_value >= 0.4999)


def test_the_transcribed_bisection_reproduces_the_published_p_value() -> None:
    result = sequential_test(CONTROL, TREATMENT, difference="absolute", alternative="greater")
    assert result.estimate is not None
    assert result.std_error is not None
    p_value, _ = sequential_one_sided_p_value(
        result.estimate,
        result.std_error,
        CONTROL.n + TREATMENT.n,
        alpha=0.05,
        tuning=5000,
        lesser=False,
    )
    assert p_value == pytest.approx(0.46316491943359384, rel=1e-12)
    assert result.p_value == pytest.approx(0.46316491943359384, abs=2e-4)


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_the_one_sided_p_value_is_where_the_interval_touches_zero(alternative: Alternative) -> None:
    control, treatment = proportion_stats(30000, 1500), proportion_stats(30000, 1750)
    if alternative == "less":
        control, treatment = treatment, control
    result = sequential_test(control, treatment, alternative=alternative)
    assert result.p_value is not None
    assert 0 < result.p_value < 0.05
    assert result.estimate is not None
    assert result.std_error is not None
    rho = sequential_rho(0.05, 5000, two_sided=False)
    at_p = halfwidth_one_sided(result.std_error, 60000, alpha=result.p_value, rho=rho)
    assert float(at_p) == pytest.approx(abs(result.estimate), rel=1e-10)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_p_value_and_interval_agree_on_significance(alternative: Alternative) -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        base = rng.uniform(0.02, 0.2)
        control = proportion_stats(5000, rng.binomial(5000, base))
        treatment = proportion_stats(5000, rng.binomial(5000, base * rng.uniform(0.8, 1.3)))
        result = sequential_test(control, treatment, alpha=0.1, alternative=alternative)
        assert result.p_value is not None
        if abs(result.p_value - 0.1) > 1e-9:
            assert result.significant == (result.p_value < 0.1)


def test_the_interval_is_wider_than_the_fixed_one_and_tightest_near_the_tuning() -> None:
    fixed = t_test(CONTROL, TREATMENT)
    widths = {
        tuning: _width(sequential_test(CONTROL, TREATMENT, tuning=tuning))
        for tuning in (10, 6461, 10000)
    }
    assert widths[6461] > _width(fixed)
    assert widths[6461] < widths[10000] < widths[10]


def _width(result) -> float:
    return result.ci[1] - result.ci[0]


def test_errors_are_returned_not_raised() -> None:
    empty = mean_stats(0, 0, 0)
    assert sequential_test(empty, TREATMENT).error == StatsError.NOT_ENOUGH_DATA
    flat = mean_stats(10, 10.0, 10.0)
    assert sequential_test(flat, TREATMENT).error == StatsError.ZERO_VARIANCE
    zero = mean_stats(10, 0.0, 10.0)
    assert sequential_test(zero, TREATMENT).error == StatsError.BASELINE_ZERO
    too_large = sequential_test(CONTROL, TREATMENT, alternative="greater", alpha=0.5)
    assert too_large.error == StatsError.ALPHA_TOO_LARGE
    assert too_large.p_value is None
