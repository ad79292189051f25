"""Always-valid (sequential) confidence intervals and p-values, so hourly peeking stays valid.

A fixed-horizon t-test is valid when it is read once; reading it every hour and stopping at
the first p < alpha inflates the false-positive rate far above alpha. An asymptotic
confidence sequence (Waudby-Smith et al., "Time-uniform central limit theory and
asymptotic confidence sequences", arXiv:2103.06476v7) holds at every look at once.
This follows gbstats' ``frequentist/tests.py`` at growthbook/growthbook commit 115869841407
(``sequential_rho``, ``sequential_interval_halfwidth[_one_sided]``,
``SequentialTwoSidedTTest``, ``SequentialOneSided*TTest``), with n = n_a + n_b and
s² = se² · n the per-unit variance of the estimate:

    rho        sqrt((-2 ln a + ln(-2 ln a + 1)) / N)       a = alpha (two-sided), 2·alpha (one)
    two-sided  s · sqrt(2 (n rho² + 1) ln(sqrt(n rho² + 1) / alpha) / (n rho)²)      eq. 9
    one-sided  s · sqrt(2 (n rho² + 1) ln(1 + sqrt(n rho² + 1) / (2 alpha)) / (n rho)²)  eq. 134
    p (two)    min(1, sqrt(n rho² + 1) · exp(-rho² n est² / (2 se² (n rho² + 1))))  eq. 155

N, the tuning parameter, is the total sample size where the interval is tightest.
The one-sided p-value is the alpha at which the interval's finite end touches zero, rho
held fixed; gbstats finds it by bisection on [1e-5, 0.4999], here it is solved in
closed form (and not clamped to that range).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tuneloop.experiments.stats.errors import StatsError
from tuneloop.experiments.stats.frequentist import (
    Alternative,
    Difference,
    Inference,
    effect_moments,
    interval,
)
from tuneloop.experiments.stats.moments import ArmStats, FloatArray

DEFAULT_TUNING = 5000.0


def sequential_rho(alpha: float, tuning: float, *, two_sided: bool = True) -> float:
    """The mixing parameter that makes the interval tightest near ``tuning`` units (eq. 161)."""
    a = alpha if two_sided else 2 * alpha
    return float(np.sqrt((-2 * np.log(a) + np.log(-2 * np.log(a) + 1)) / tuning))


def halfwidth_two_sided(
    std_error: npt.ArrayLike, n: npt.ArrayLike, *, alpha: float, rho: float
) -> FloatArray:
    """Half-width of the two-sided always-valid interval."""
    se, n_ = np.asarray(std_error, dtype=float), np.asarray(n, dtype=float)
    spread = n_ * rho**2 + 1
    return se * np.sqrt(n_ * 2 * spread * np.log(np.sqrt(spread) / alpha) / (n_ * rho) ** 2)


def halfwidth_one_sided(
    std_error: npt.ArrayLike, n: npt.ArrayLike, *, alpha: float, rho: float
) -> FloatArray:
    """Distance from the estimate to the finite end of the one-sided always-valid interval."""
    se, n_ = np.asarray(std_error, dtype=float), np.asarray(n, dtype=float)
    spread = n_ * rho**2 + 1
    log_term = np.log(1 + np.sqrt(spread) / (2 * alpha))
    return se * np.sqrt(n_ * 2 * spread * log_term / (n_ * rho) ** 2)


def p_value_two_sided(
    estimate: npt.ArrayLike, std_error: npt.ArrayLike, n: npt.ArrayLike, *, rho: float
) -> FloatArray:
    """1 / e-value of the mixture martingale, capped at 1 (computed in logs: no overflow)."""
    z2 = (np.asarray(estimate, dtype=float) / np.asarray(std_error, dtype=float)) ** 2
    spread = np.asarray(n, dtype=float) * rho**2 + 1
    log_p = 0.5 * np.log(spread) - rho**2 * np.asarray(n, dtype=float) * z2 / (2 * spread)
    return np.exp(np.minimum(log_p, 0.0))


def p_value_one_sided(
    estimate: npt.ArrayLike,
    std_error: npt.ArrayLike,
    n: npt.ArrayLike,
    *,
    rho: float,
    alternative: Alternative,
) -> FloatArray:
    """The alpha at which the one-sided interval's finite end reaches zero (1 if never).

    Solving ``|estimate| = halfwidth_one_sided(alpha)`` for alpha gives
    alpha = sqrt(n rho² + 1) / (2 (e^x - 1)) with x = n rho² z² / (2 (n rho² + 1)).
    """
    est = np.asarray(estimate, dtype=float)
    n_ = np.asarray(n, dtype=float)
    spread = n_ * rho**2 + 1
    x = n_ * rho**2 * (est / np.asarray(std_error, dtype=float)) ** 2 / (2 * spread)
    right_side = est > 0 if alternative == "greater" else est < 0
    usable = right_side & (x > 0)
    safe_x = np.where(usable, x, 1.0)
    # e^-x / (1 - e^-x) == 1 / (e^x - 1), without overflow for large x
    alpha = np.sqrt(spread) * np.exp(-safe_x) / (2 * -np.expm1(-safe_x))
    return np.where(usable, np.minimum(alpha, 1.0), 1.0)


def sequential_test(
    control: ArmStats,
    treatment: ArmStats,
    *,
    difference: Difference = "relative",
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    tuning: float = DEFAULT_TUNING,
) -> Inference:
    """Treatment minus control with an always-valid interval: safe to read every hour."""
    if alternative != "two-sided" and alpha >= 0.5:
        return Inference.failed(StatsError.ALPHA_TOO_LARGE)
    moments = effect_moments(control, treatment, relative=difference == "relative")
    if isinstance(moments, StatsError):
        return Inference.failed(moments)
    estimate, std_error = moments
    return sequential_inference(
        estimate,
        std_error,
        control.n + treatment.n,
        alpha=alpha,
        alternative=alternative,
        tuning=tuning,
    )


def sequential_inference(
    estimate: float,
    std_error: float,
    n: int,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    tuning: float = DEFAULT_TUNING,
) -> Inference:
    """The always-valid test of an estimate already made (ratio and CUPED estimates too)."""
    two_sided = alternative == "two-sided"
    if not two_sided and alpha >= 0.5:
        return Inference.failed(StatsError.ALPHA_TOO_LARGE)
    rho = sequential_rho(alpha, tuning, two_sided=two_sided)
    with np.errstate(all="ignore"):  # overflow on absurd sums is reported as NOT_FINITE
        if two_sided:
            halfwidth = halfwidth_two_sided(std_error, n, alpha=alpha, rho=rho)
            p_value = p_value_two_sided(estimate, std_error, n, rho=rho)
        else:
            halfwidth = halfwidth_one_sided(std_error, n, alpha=alpha, rho=rho)
            p_value = p_value_one_sided(estimate, std_error, n, rho=rho, alternative=alternative)
    return Inference(
        estimate=estimate,
        std_error=std_error,
        ci=interval(estimate, float(halfwidth), alternative),
        p_value=float(p_value),
    ).checked()
