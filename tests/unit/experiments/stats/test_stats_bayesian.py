"""The Bayesian engine against gbstats 0.8.0's EffectBayesianABTest and scipy's truncnorm."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from gbstats_reference import GB_CONTROL, GB_TREATMENT, gb_statistics, requires_gbstats
from scipy import stats as scipy_stats

from tuneloop.experiments.stats.analysis import analyze, parse_request
from tuneloop.experiments.stats.bayesian import Prior, bayesian_test, risks

try:
    from gbstats.bayesian import tests as gb_bayes
except Exception:  # the gbstats_reference marker says why the tests skip
    gb_bayes = None


def run(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(analyze(parse_request(json.dumps(data))).model_dump_json())


ARMS = [{"name": "control", **GB_CONTROL}, {"name": "candidate", **GB_TREATMENT}]


@requires_gbstats
@pytest.mark.parametrize("difference", ["relative", "absolute"])
@pytest.mark.parametrize("proper", [False, True])
@pytest.mark.parametrize("inverse", [False, True])
def test_matches_gbstats_effect_bayesian_test(difference: str, proper: bool, inverse: bool) -> None:
    assert gb_statistics is not None and gb_bayes is not None
    prior = {"mean": 0.05, "variance": 0.09, "proper": proper}
    config = gb_bayes.EffectBayesianConfig(
        difference_type=difference,
        inverse=inverse,
        prior_type="relative",
        prior_effect=gb_bayes.GaussianPrior(**prior),
    )
    reference = gb_bayes.EffectBayesianABTest(
        gb_statistics.SampleMeanStatistic(**GB_CONTROL),
        gb_statistics.SampleMeanStatistic(**GB_TREATMENT),
        config,
    ).compute_result()
    out = run(
        {
            "engine": "bayesian",
            "difference": difference,
            "inverse": inverse,
            "prior": prior,
            "arms": ARMS,
        }
    )
    comparison = out["comparisons"][0]
    assert comparison["p_value"] is None
    assert comparison["estimate"] == pytest.approx(reference.expected, rel=1e-6)
    assert comparison["std_error"] == pytest.approx(reference.uplift.stddev, rel=1e-6)
    assert comparison["ci"] == pytest.approx(reference.ci, rel=1e-6)
    assert comparison["chance_to_win"] == pytest.approx(reference.chance_to_win, rel=1e-6)
    assert [comparison["risk_control"], comparison["risk_treatment"]] == pytest.approx(
        reference.risk, rel=1e-6
    )


@pytest.mark.parametrize(("mu", "sigma"), [(0.1, 0.05), (-0.02, 0.03), (0.0, 1.0), (3.0, 0.2)])
def test_risks_are_truncated_normal_expectations(mu: float, sigma: float) -> None:
    below = scipy_stats.norm.cdf(0, mu, sigma)
    mean_above = scipy_stats.truncnorm.mean((0 - mu) / sigma, np.inf, loc=mu, scale=sigma)
    mean_below = scipy_stats.truncnorm.mean(-np.inf, (0 - mu) / sigma, loc=mu, scale=sigma)
    control, treatment = risks(mu, sigma)
    assert control == pytest.approx((1 - below) * mean_above, rel=1e-9, abs=1e-15)
    assert treatment == pytest.approx(-below * mean_below, rel=1e-9, abs=1e-15)


def test_a_proper_prior_shrinks_and_a_flat_one_does_not() -> None:
    flat = bayesian_test(0.2, 0.1, control_mean=1.0, relative=True)
    proper = bayesian_test(0.2, 0.1, control_mean=1.0, relative=True, prior=Prior(proper=True))
    assert flat.estimate == 0.2 and flat.std_error == pytest.approx(0.1)
    # precision-weighted: (0.2/0.01 + 0/0.09) / (1/0.01 + 1/0.09)
    assert proper.estimate == pytest.approx(0.2 * 100 / (100 + 1 / 0.09))
    assert proper.chance_to_win is not None and flat.chance_to_win is not None
    assert proper.chance_to_win < flat.chance_to_win


def test_for_an_absolute_effect_the_relative_prior_is_rescaled_by_the_control_mean() -> None:
    prior = Prior(mean=0.1, variance=0.04, proper=True)
    absolute = bayesian_test(0.5, 0.4, control_mean=-2.0, relative=False, prior=prior)
    precision = 1 / 0.16 + 1 / (0.04 * 4)
    assert absolute.estimate == pytest.approx((0.5 / 0.16 + 0.2 / 0.16) / precision)


def test_degenerate_inputs_give_error_codes() -> None:
    assert bayesian_test(0.1, 0.0, control_mean=1.0, relative=True).error == "ZERO_VARIANCE"
    zero = bayesian_test(0.1, 0.1, control_mean=0.0, relative=False, prior=Prior(proper=True))
    assert zero.error == "BASELINE_ZERO"
    arms = [{"name": "c", "n": 10, "sum": 5, "sum_squares": 2.5}, ARMS[1]]
    out = run({"engine": "bayesian", "arms": arms})["comparisons"][0]
    assert out["error"] == "ZERO_VARIANCE" and out["chance_to_win"] is None
