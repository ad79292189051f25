"""CUPED against gbstats 0.8.0 (absolute), gbstats' current relative formula, and OLS."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import statsmodels.api as sm
from gbstats_reference import gb_statistics, gb_tests, requires_gbstats

from tuneloop.experiments.stats.analysis import analyze, parse_request
from tuneloop.experiments.stats.cuped import CupedArm, cuped_moments, pooled_theta
from tuneloop.experiments.stats.errors import StatsError


def raw(seed: int, n: int, lift: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit engagement after and before exposure, correlated by the unit's habit."""
    rng = np.random.default_rng(seed)
    habit = rng.gamma(2.0, 1.5, n)
    pre = habit + rng.normal(0, 1, n)
    post = habit * (1 + lift) + rng.normal(0, 1, n)
    return post, pre


def arm(post: np.ndarray, pre: np.ndarray) -> CupedArm:
    return CupedArm(
        n=len(post),
        sum=float(post.sum()),
        sum_squares=float((post**2).sum()),
        pre_sum=float(pre.sum()),
        pre_sum_squares=float((pre**2).sum()),
        post_pre_sum_products=float((post * pre).sum()),
    )


CONTROL, TREATMENT = raw(1, 700, 0.0), raw(2, 650, 0.05)


def test_pooled_theta_is_the_ols_slope_of_post_on_pre_over_both_arms() -> None:
    post = np.concatenate([CONTROL[0], TREATMENT[0]])
    pre = np.concatenate([CONTROL[1], TREATMENT[1]])
    slope = sm.OLS(post, sm.add_constant(pre)).fit().params[1]
    assert pooled_theta(arm(*CONTROL), arm(*TREATMENT)) == pytest.approx(slope, rel=1e-9)


@requires_gbstats
def test_absolute_cuped_matches_gbstats_regression_adjusted_statistic() -> None:
    assert gb_statistics is not None and gb_tests is not None

    def gb(post: np.ndarray, pre: np.ndarray) -> Any:
        a = arm(post, pre)
        return gb_statistics.RegressionAdjustedStatistic(
            n=a.n,
            post_statistic=gb_statistics.SampleMeanStatistic(
                n=a.n, sum=a.sum, sum_squares=a.sum_squares
            ),
            pre_statistic=gb_statistics.SampleMeanStatistic(
                n=a.n, sum=a.pre_sum, sum_squares=a.pre_sum_squares
            ),
            post_pre_sum_of_products=a.post_pre_sum_products,
            theta=0.0,  # gbstats sets the pooled theta itself
        )

    reference = gb_tests.TwoSidedTTest(
        gb(*CONTROL), gb(*TREATMENT), gb_tests.FrequentistConfig(difference_type="absolute")
    )
    result = reference.compute_result()
    ours = cuped_moments(arm(*CONTROL), arm(*TREATMENT), relative=False)
    assert not isinstance(ours, StatsError)
    assert ours.theta == pytest.approx(reference.stat_a.theta, rel=1e-9)
    assert ours.estimate == pytest.approx(result.expected, rel=1e-6)
    assert ours.std_error == pytest.approx(np.sqrt(reference.variance), rel=1e-6)
    assert ours.dof == pytest.approx(reference.dof, rel=1e-6)
    assert ours.variance_reduction > 0.5  # habit explains most of the variance


def test_relative_cuped_variance_is_gbstats_current_formula() -> None:
    # transcribed from growthbook/growthbook packages/stats/gbstats/models/tests.py at
    # 78e2595337 (frequentist_variance_relative_cuped); gbstats 0.8.0 lacks it
    a, b = arm(*CONTROL), arm(*TREATMENT)
    theta = pooled_theta(a, b)
    m, mb = a.post.mean, b.post.mean
    num_trt = b.post.variance + theta**2 * b.pre.variance - 2 * theta * b.covariance
    const = -mb
    num_a = a.post.variance * const**2 / m**2
    num_b = 2 * theta * a.covariance * const / m
    num_c = theta**2 * a.pre.variance
    variance = num_trt / (b.n * m**2) + (num_a + num_b + num_c) / (a.n * m**2)
    estimate = (b.adjusted(theta).mean - a.adjusted(theta).mean) / abs(m)
    ours = cuped_moments(a, b, relative=True)
    assert not isinstance(ours, StatsError)
    assert ours.estimate == pytest.approx(estimate, rel=1e-12)
    assert ours.std_error**2 == pytest.approx(variance, rel=1e-9)


def payload(pre_scale: float = 1.0, **change: Any) -> dict[str, Any]:
    arms = []
    for name, (post, pre) in (("control", CONTROL), ("candidate", TREATMENT)):
        a = arm(post, pre * pre_scale)
        arms.append(
            {
                "name": name,
                "n": a.n,
                "sum": a.sum,
                "sum_squares": a.sum_squares,
                "pre_sum": a.pre_sum,
                "pre_sum_squares": a.pre_sum_squares,
                "post_pre_sum_products": a.post_pre_sum_products,
            }
        )
    return {"metric": "mean", "method": "fixed", "arms": arms, **change}


def run(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(analyze(parse_request(json.dumps(data))).model_dump_json())


def test_the_json_reports_theta_and_a_narrower_interval_than_without_cuped() -> None:
    adjusted = run(payload())["comparisons"][0]
    plain_arms = [
        {k: v for k, v in a.items() if not k.startswith(("pre_", "post_pre"))}
        for a in payload()["arms"]
    ]
    plain = run({**payload(), "arms": plain_arms})["comparisons"][0]
    assert plain["cuped"] is None
    assert adjusted["cuped"]["theta"] == pytest.approx(pooled_theta(arm(*CONTROL), arm(*TREATMENT)))
    reduction = adjusted["cuped"]["variance_reduction"]
    assert reduction == pytest.approx(1 - adjusted["std_error"] ** 2 / plain["std_error"] ** 2)
    assert adjusted["std_error"] < 0.7 * plain["std_error"]


def test_an_empty_pre_period_falls_back_to_the_unadjusted_test_and_says_so() -> None:
    out = run(payload(pre_scale=0.0))["comparisons"][0]
    assert out["error"] is None and out["estimate"] is not None
    assert out["cuped"] == {
        "theta": 0.0,
        "variance_reduction": pytest.approx(0.0, abs=1e-12),
        "error": "NO_PRE_PERIOD_VARIANCE",
    }


def test_zero_post_variance_is_an_error_code() -> None:
    data = payload()
    data["arms"][0]["sum_squares"] = data["arms"][0]["sum"] ** 2 / data["arms"][0]["n"]
    assert run(data)["comparisons"][0]["error"] == "ZERO_VARIANCE"
