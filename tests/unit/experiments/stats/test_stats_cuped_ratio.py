"""CUPED of ratio metrics against GrowthBook's current formulas on numpy covariances of raw units.

gbstats 0.8.0 has no ``RegressionAdjustedRatioStatistic``: the reference here is the current
source's formulas (growthbook/growthbook ``models/statistics.py`` at 020838965897 and
``models/tests.py`` at 78e2595337) applied to ``np.cov`` of the raw per-unit values.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from tuneloop.experiments.stats.analysis import analyze, parse_request
from tuneloop.experiments.stats.cuped_ratio import (
    RatioCupedArm,
    pooled_theta,
    ratio_cuped_moments,
)
from tuneloop.experiments.stats.errors import StatsError


def units(seed: int, n: int, lift: float) -> np.ndarray:
    """(M, D, M0, D0) per unit: engagements and impressions after and before exposure."""
    rng = np.random.default_rng(seed)
    habit = rng.gamma(2.0, 0.03, n)
    d0, d = rng.poisson(20, n) + 1.0, rng.poisson(20, n) + 1.0
    m0 = rng.poisson(habit * d0).astype(float)
    m = rng.poisson(habit * d * (1 + lift)).astype(float)
    return np.vstack([m, d, m0, d0])


def arm(x: np.ndarray, *, pre_scale: float = 1.0) -> RatioCupedArm:
    m, d, m0, d0 = x[0], x[1], x[2] * pre_scale, x[3]
    return RatioCupedArm(
        n=x.shape[1], m=m.sum(), m2=(m * m).sum(), d=d.sum(), d2=(d * d).sum(),
        md=(m * d).sum(), m0=m0.sum(), m02=(m0 * m0).sum(), d0=d0.sum(), d02=(d0 * d0).sum(),
        m_m0=(m * m0).sum(), d_d0=(d * d0).sum(), m0_d0=(m0 * d0).sum(), m_d0=(m * d0).sum(),
        m0_d=(m0 * d).sum(),
    )  # fmt: skip


A, B = units(1, 900, 0.0), units(2, 950, 0.08)


def nabla(x: np.ndarray, theta: float) -> np.ndarray:
    m, d, m0, d0 = x.mean(axis=1)
    return np.array([1 / d, -m / d**2, -theta / d0, theta * m0 / d0**2])


def reference_theta() -> float:
    cov = var = 0.0
    for x in (A, B):
        lam, g = np.cov(x, ddof=1), nabla(x, 1.0)
        cov += g[2:4] @ lam[2:4, 0:2] @ g[0:2]
        var += g[2:4] @ lam[2:4, 2:4] @ g[2:4]
    return float(-cov / var)


def adjusted_mean(x: np.ndarray, theta: float) -> float:
    return float(x[0].sum() / x[1].sum() - theta * x[2].sum() / x[3].sum())


def test_theta_and_absolute_effect_match_the_formulas_on_raw_units() -> None:
    theta = reference_theta()
    assert pooled_theta(arm(A), arm(B)) == pytest.approx(theta, rel=1e-9)
    ours = ratio_cuped_moments(arm(A), arm(B), relative=False)
    assert not isinstance(ours, StatsError)
    variance = sum(
        nabla(x, theta) @ np.cov(x, ddof=1) @ nabla(x, theta) / x.shape[1] for x in (A, B)
    )
    assert ours.estimate == pytest.approx(adjusted_mean(B, theta) - adjusted_mean(A, theta))
    assert ours.std_error**2 == pytest.approx(variance, rel=1e-9)
    assert ours.theta > 0.2 and ours.variance_reduction > 0.05


def test_relative_effect_is_gbstats_relative_cuped_ratio_variance() -> None:
    theta = reference_theta()
    mean_a, mean_b = adjusted_mean(A, theta), adjusted_mean(B, theta)
    unadjusted = A[0].sum() / A[1].sum()
    g_abs, den = mean_b - mean_a, abs(unadjusted)
    m_post, d_post = A[0].mean(), A[1].mean()
    nabla_a = np.array(
        [
            -(den + g_abs) / d_post / den**2,
            (m_post * den / d_post**2 + m_post * g_abs / d_post**2) / den**2,
            -nabla(A, theta)[2] / den,
            -nabla(A, theta)[3] / den,
        ]
    )
    nabla_b = nabla(B, theta) / den
    variance = (
        nabla_a @ np.cov(A, ddof=1) @ nabla_a / A.shape[1]
        + nabla_b @ np.cov(B, ddof=1) @ nabla_b / B.shape[1]
    )
    ours = ratio_cuped_moments(arm(A), arm(B), relative=True)
    assert not isinstance(ours, StatsError)
    assert ours.estimate == pytest.approx((mean_b - mean_a) / den, rel=1e-9)
    assert ours.std_error**2 == pytest.approx(variance, rel=1e-9)


def test_no_pre_period_falls_back_and_a_zero_pre_denominator_is_an_error() -> None:
    flat = ratio_cuped_moments(arm(A, pre_scale=0.0), arm(B, pre_scale=0.0), relative=True)
    assert not isinstance(flat, StatsError)
    assert (flat.theta, flat.error) == (0.0, StatsError.NO_PRE_PERIOD_VARIANCE)
    assert flat.variance_reduction == pytest.approx(0.0, abs=1e-12)
    no_d0 = A.copy()
    no_d0[3] = 0.0
    assert ratio_cuped_moments(arm(no_d0), arm(B), relative=True) == "ZERO_DENOMINATOR"


def json_arm(name: str, x: np.ndarray) -> dict[str, Any]:
    a = arm(x)
    return {
        "name": name, "n": a.n, "numerator_sum": a.m, "numerator_sum_squares": a.m2,
        "denominator_sum": a.d, "denominator_sum_squares": a.d2,
        "numerator_denominator_sum_products": a.md, "pre_numerator_sum": a.m0,
        "pre_numerator_sum_squares": a.m02, "pre_denominator_sum": a.d0,
        "pre_denominator_sum_squares": a.d02, "numerator_pre_numerator_sum_products": a.m_m0,
        "denominator_pre_denominator_sum_products": a.d_d0,
        "pre_numerator_pre_denominator_sum_products": a.m0_d0,
        "numerator_pre_denominator_sum_products": a.m_d0,
        "pre_numerator_denominator_sum_products": a.m0_d,
    }  # fmt: skip


def test_the_json_contract_adjusts_a_ratio_arm_with_pre_period_sums() -> None:
    payload = {"metric": "ratio", "method": "fixed", "arms": [json_arm("a", A), json_arm("b", B)]}
    out = json.loads(analyze(parse_request(json.dumps(payload))).model_dump_json())
    comparison = out["comparisons"][0]
    ours = ratio_cuped_moments(arm(A), arm(B), relative=True)
    assert not isinstance(ours, StatsError)
    assert comparison["cuped"]["theta"] == pytest.approx(ours.theta)
    assert comparison["std_error"] == pytest.approx(ours.std_error)
    del payload["arms"][0]["pre_numerator_sum"]  # type: ignore[index]
    with pytest.raises(Exception, match="the analysis request is invalid"):
        parse_request(json.dumps(payload))
