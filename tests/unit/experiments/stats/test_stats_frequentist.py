"""Welch t-tests against scipy, statsmodels and GrowthBook's gbstats (0.8.0 and current source)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gbstats_reference import (
    GB_CONTROL,
    GB_TREATMENT,
    gb_statistics,
    gb_tests,
    lesser_upper_bound,
    requires_gbstats,
)
from scipy import stats as scipy_stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from tuneloop.experiments.stats.errors import StatsError
from tuneloop.experiments.stats.frequentist import Alternative, Difference, t_test
from tuneloop.experiments.stats.moments import ArmStats, mean_stats, proportion_stats

REL = 1e-6
ALTERNATIVES: list[Alternative] = ["two-sided", "greater", "less"]
DIFFERENCES: list[Difference] = ["relative", "absolute"]
SCIPY_ALTERNATIVE = {"two-sided": "two-sided", "greater": "greater", "less": "less"}
STATSMODELS_ALTERNATIVE = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}


def random_arms(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_a, n_b = rng.integers(20, 3000, size=2)
    control = rng.lognormal(0.0, 1.0, size=n_a)
    treatment = rng.lognormal(rng.normal(0, 0.1), 1.0, size=n_b)
    return control, treatment


def stats_of(values: np.ndarray) -> ArmStats:
    return mean_stats(values.size, values.sum(), (values**2).sum())


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_absolute_difference_matches_scipy_welch(seed: int, alternative: Alternative) -> None:
    control, treatment = random_arms(seed)
    result = t_test(
        stats_of(control), stats_of(treatment), difference="absolute", alternative=alternative
    )
    reference = scipy_stats.ttest_ind_from_stats(
        treatment.mean(),
        treatment.std(ddof=1),
        treatment.size,
        control.mean(),
        control.std(ddof=1),
        control.size,
        equal_var=False,
        alternative=SCIPY_ALTERNATIVE[alternative],
    )
    assert result.estimate == pytest.approx(treatment.mean() - control.mean(), rel=REL)
    assert result.estimate / result.std_error == pytest.approx(reference.statistic, rel=REL)
    assert result.p_value == pytest.approx(reference.pvalue, rel=REL, abs=1e-15)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_absolute_interval_matches_statsmodels_on_raw_data(
    seed: int, alternative: Alternative
) -> None:
    control, treatment = random_arms(100 + seed)
    result = t_test(
        stats_of(control),
        stats_of(treatment),
        difference="absolute",
        alpha=0.1,
        alternative=alternative,
    )
    compare = CompareMeans(DescrStatsW(treatment), DescrStatsW(control))
    low, high = compare.tconfint_diff(
        alpha=0.1, alternative=STATSMODELS_ALTERNATIVE[alternative], usevar="unequal"
    )
    _, p_value, _ = compare.ttest_ind(
        alternative=STATSMODELS_ALTERNATIVE[alternative], usevar="unequal"
    )
    assert result.ci is not None
    assert result.ci[0] == pytest.approx(low, rel=REL)
    assert result.ci[1] == pytest.approx(high, rel=REL)
    assert result.p_value == pytest.approx(p_value, rel=REL, abs=1e-15)


def test_proportions_match_scipy_with_the_bernoulli_variance() -> None:
    control, treatment = proportion_stats(4000, 212), proportion_stats(3900, 260)
    result = t_test(control, treatment, difference="absolute")
    reference = scipy_stats.ttest_ind_from_stats(
        treatment.mean,
        math.sqrt(treatment.variance),
        treatment.n,
        control.mean,
        math.sqrt(control.variance),
        control.n,
        equal_var=False,
    )
    assert result.p_value == pytest.approx(reference.pvalue, rel=REL)


def gbstats_result(cls_name: str, control: dict, treatment: dict, difference: str, alpha: float):
    assert gb_tests is not None
    assert gb_statistics is not None
    if "successes" in control:
        a = gb_statistics.ProportionStatistic(n=control["n"], sum=control["successes"])
        b = gb_statistics.ProportionStatistic(n=treatment["n"], sum=treatment["successes"])
    else:
        a = gb_statistics.SampleMeanStatistic(**control)
        b = gb_statistics.SampleMeanStatistic(**treatment)
    config = gb_tests.FrequentistConfig(difference_type=difference, alpha=alpha)
    return getattr(gb_tests, cls_name)(a, b, config).compute_result()


def ours(control: dict, treatment: dict, **options: object):
    if "successes" in control:
        a, b = proportion_stats(**control), proportion_stats(**treatment)
    else:
        a = mean_stats(control["n"], control["sum"], control["sum_squares"])
        b = mean_stats(treatment["n"], treatment["sum"], treatment["sum_squares"])
    return t_test(a, b, **options)  # type: ignore[arg-type]


CASES = [
    (GB_CONTROL, GB_TREATMENT),
    (
        {"n": 3407, "sum": 1396.87, "sum_squares": 52377.97},
        {"n": 3461, "sum": 2422.7, "sum_squares": 134698.29},
    ),
    (
        {"n": 50, "sum": 210.0, "sum_squares": 1500.0},
        {"n": 61, "sum": 230.0, "sum_squares": 1400.0},
    ),
    ({"n": 9000, "successes": 540}, {"n": 9100, "successes": 610}),
    ({"n": 120, "successes": 30}, {"n": 80, "successes": 14}),
]
GB_CLASSES = {
    "two-sided": "TwoSidedTTest",
    "greater": "OneSidedTreatmentGreaterTTest",
    "less": "OneSidedTreatmentLesserTTest",
}


@requires_gbstats
@pytest.mark.parametrize(("control", "treatment"), CASES)
@pytest.mark.parametrize("difference", DIFFERENCES)
@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_matches_gbstats_release(
    control: dict, treatment: dict, difference: Difference, alternative: Alternative, alpha: float
) -> None:
    expected = gbstats_result(GB_CLASSES[alternative], control, treatment, difference, alpha)
    result = ours(control, treatment, difference=difference, alternative=alternative, alpha=alpha)
    assert result.estimate == pytest.approx(expected.expected, rel=REL)
    assert result.std_error == pytest.approx(expected.uplift.stddev, rel=REL)
    # gbstats computes 1 - cdf, exact only to ~1e-16 absolute; we use the survival function
    assert result.p_value == pytest.approx(expected.p_value, rel=REL, abs=1e-15)
    assert result.ci is not None
    if alternative != "less":
        assert list(result.ci) == pytest.approx(list(expected.ci), rel=REL)
    else:
        # 0.8.0's upper end is estimate - halfwidth; the current source (and we) use +
        halfwidth = expected.expected - expected.ci[1]
        assert result.ci[0] == -math.inf
        assert result.ci[1] == pytest.approx(
            lesser_upper_bound(expected.expected, halfwidth), rel=REL
        )


# GrowthBook's published expectations (packages/stats/tests/frequentist/test_tests.py, 115869841):
REL_SE = (0.5033610858562358, 0.3334122146400735)
ABS_SE = (0.23437666666666668, 0.12983081254184736)
PUBLISHED = [
    ("greater", "relative", *REL_SE, (-0.045136675850396046, math.inf), 0.06558262868467746),
    ("greater", "absolute", *ABS_SE, (0.020791480063255735, math.inf), 0.03554272489873023),
    ("less", "relative", *REL_SE, (-math.inf, 1.0518588475628676), 0.9344173713153225),
    ("less", "absolute", *ABS_SE, (-math.inf, 0.44796185327007765), 0.9644572751012698),
]


@pytest.mark.parametrize(
    ("alternative", "difference", "estimate", "se", "ci", "p_value"), PUBLISHED
)
def test_matches_the_current_gbstats_published_values(
    alternative: Alternative,
    difference: Difference,
    estimate: float,
    se: float,
    ci: tuple[float, float],
    p_value: float,
) -> None:
    result = ours(GB_CONTROL, GB_TREATMENT, difference=difference, alternative=alternative)
    assert result.estimate == pytest.approx(estimate, rel=REL)
    assert result.std_error == pytest.approx(se, rel=REL)
    assert result.ci == pytest.approx(ci, rel=REL)
    assert result.p_value == pytest.approx(p_value, rel=REL)


def test_the_relative_interval_scales_the_delta_method_standard_error() -> None:
    control, treatment = mean_stats(400, 2000.0, 12000.0), mean_stats(420, 2300.0, 14500.0)
    result = t_test(control, treatment)
    se = math.sqrt(
        treatment.variance / (control.mean**2 * treatment.n)
        + control.variance * treatment.mean**2 / (control.mean**4 * control.n)
    )
    assert result.std_error == pytest.approx(se, rel=1e-12)
    assert result.estimate == pytest.approx(treatment.mean / control.mean - 1, rel=1e-12)


def test_one_and_two_sided_agree_on_direction() -> None:
    control, treatment = proportion_stats(5000, 250), proportion_stats(5000, 320)
    two = t_test(control, treatment)
    greater = t_test(control, treatment, alternative="greater")
    less = t_test(control, treatment, alternative="less")
    assert greater.p_value == pytest.approx(two.p_value / 2, rel=1e-9)
    assert greater.p_value + less.p_value == pytest.approx(1.0, rel=1e-12)
    assert greater.significant
    assert two.significant
    assert not less.significant


@pytest.mark.parametrize(
    ("control", "treatment", "difference", "error"),
    [
        (mean_stats(0, 0, 0), mean_stats(10, 5, 9), "relative", StatsError.NOT_ENOUGH_DATA),
        (mean_stats(1, 3, 9), mean_stats(10, 5, 9), "absolute", StatsError.NOT_ENOUGH_DATA),
        (mean_stats(10, 20, 40), mean_stats(10, 5, 9), "absolute", StatsError.ZERO_VARIANCE),
        (proportion_stats(100, 0), proportion_stats(100, 3), "relative", StatsError.ZERO_VARIANCE),
        (mean_stats(10, 0, 30), mean_stats(10, 5, 9), "relative", StatsError.BASELINE_ZERO),
    ],
)
@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_degenerate_inputs_return_an_error_code(
    control: ArmStats,
    treatment: ArmStats,
    difference: Difference,
    error: StatsError,
    alternative: Alternative,
) -> None:
    result = t_test(control, treatment, difference=difference, alternative=alternative)
    assert result.error == error
    assert (result.estimate, result.std_error, result.ci, result.p_value) == (
        None,
        None,
        None,
        None,
    )
    assert not result.significant


def test_a_zero_control_mean_is_fine_for_an_absolute_difference() -> None:
    result = t_test(mean_stats(10, 0, 30), mean_stats(10, 5, 9), difference="absolute")
    assert result.error is None
    assert result.estimate == pytest.approx(0.5)
