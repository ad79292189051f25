"""Ratio metrics (delta method) against gbstats 0.8.0's RatioStatistic and raw-data numpy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gbstats_reference import gb_statistics, gb_tests, requires_gbstats

from tuneloop.errors import InvalidInputError
from tuneloop.experiments.stats.analysis import analyze, parse_request
from tuneloop.experiments.stats.errors import StatsError
from tuneloop.experiments.stats.frequentist import t_test
from tuneloop.experiments.stats.moments import ArmStats
from tuneloop.experiments.stats.ratio import ratio_stats


def sums(m: np.ndarray, d: np.ndarray) -> dict[str, float]:
    return {
        "n": len(m),
        "numerator_sum": float(m.sum()),
        "numerator_sum_squares": float((m**2).sum()),
        "denominator_sum": float(d.sum()),
        "denominator_sum_squares": float((d**2).sum()),
        "numerator_denominator_sum_products": float((m * d).sum()),
    }


def units(seed: int, n: int, rate: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    impressions = rng.poisson(20, n) + 1.0
    engagements = rng.binomial(impressions.astype(int), rate).astype(float)
    return engagements, impressions


def stats(seed: int, n: int, rate: float) -> ArmStats:
    out = ratio_stats(**sums(*units(seed, n, rate)))  # type: ignore[arg-type]
    assert isinstance(out, ArmStats)
    return out


def test_mean_and_variance_are_the_delta_method_on_raw_units() -> None:
    m, d = units(1, 500, 0.06)
    arm = stats(1, 500, 0.06)
    assert arm.mean == pytest.approx(m.sum() / d.sum(), rel=1e-12)
    cov = np.cov(np.vstack([m, d]), ddof=1)
    gradient = np.array([1 / d.mean(), -m.mean() / d.mean() ** 2])
    assert arm.variance == pytest.approx(gradient @ cov @ gradient, rel=1e-9)


@requires_gbstats
@pytest.mark.parametrize("difference", ["relative", "absolute"])
def test_t_test_matches_gbstats_ratio_statistic(difference: str) -> None:
    assert gb_statistics is not None and gb_tests is not None
    control, treatment = sums(*units(2, 800, 0.05)), sums(*units(3, 820, 0.06))

    def gb(arm: dict[str, float]) -> object:
        n = int(arm["n"])
        return gb_statistics.RatioStatistic(
            n=n,
            m_statistic=gb_statistics.SampleMeanStatistic(
                n=n, sum=arm["numerator_sum"], sum_squares=arm["numerator_sum_squares"]
            ),
            d_statistic=gb_statistics.SampleMeanStatistic(
                n=n, sum=arm["denominator_sum"], sum_squares=arm["denominator_sum_squares"]
            ),
            m_d_sum_of_products=arm["numerator_denominator_sum_products"],
        )

    reference = gb_tests.TwoSidedTTest(
        gb(control), gb(treatment), gb_tests.FrequentistConfig(difference_type=difference)
    ).compute_result()
    ours = t_test(
        ratio_stats(**control),  # type: ignore[arg-type]
        ratio_stats(**treatment),  # type: ignore[arg-type]
        difference=difference,  # type: ignore[arg-type]
    )
    assert ours.estimate == pytest.approx(reference.expected, rel=1e-6)
    assert ours.p_value == pytest.approx(reference.p_value, rel=1e-6)
    assert ours.ci == pytest.approx(tuple(reference.ci), rel=1e-6)


def test_zero_denominator_and_one_unit_are_error_codes() -> None:
    zero = {**sums(*units(4, 50, 0.05)), "denominator_sum": 0.0}
    assert ratio_stats(**zero) == StatsError.ZERO_DENOMINATOR  # type: ignore[arg-type]
    arms = [
        {"name": "control", **zero},
        {"name": "candidate", **sums(*units(5, 50, 0.05))},
    ]
    out = json.loads(
        analyze(parse_request(json.dumps({"metric": "ratio", "arms": arms}))).model_dump_json()
    )
    assert out["comparisons"][0]["error"] == "ZERO_DENOMINATOR"
    assert out["comparisons"][0]["estimate"] is None
    single = [{"name": "c", **sums(*units(6, 1, 0.05))}, {"name": "t", **sums(*units(7, 1, 0.05))}]
    out = json.loads(
        analyze(parse_request(json.dumps({"metric": "ratio", "arms": single}))).model_dump_json()
    )
    assert out["comparisons"][0]["error"] == "NOT_ENOUGH_DATA"


def test_a_ratio_arm_must_carry_all_five_sums() -> None:
    arm = sums(*units(8, 30, 0.05))
    del arm["numerator_denominator_sum_products"]
    payload = {"metric": "ratio", "arms": [{"name": "c", **arm}, {"name": "t", **arm}]}
    with pytest.raises(InvalidInputError) as caught:
        parse_request(json.dumps(payload))
    assert any(
        p.where == "arms" and "numerator_denominator_sum_products" in p.reason
        for p in caught.value.problems
    )
