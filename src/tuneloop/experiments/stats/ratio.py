"""Ratio metrics (sum of numerators / sum of denominators over units) by the delta method.

Engagement rate is engagements / impressions summed per unit, cost per token is cost /
tokens: the unit is the randomisation unit, not the event, so per-unit numerator M and
denominator D are correlated and the ratio's variance needs their covariance. This follows
gbstats' ``RatioStatistic`` (``models/statistics.py``, growthbook/growthbook commit
020838965897) and ``variance_of_ratios`` (``utils.py``, commit cc3c8905a490):

    mean      = sum(M) / sum(D)
    cov(M, D) = (sum(M·D) - sum(M)·sum(D)/n) / (n - 1)
    variance  = var_M/m_D² + var_D·m_M²/m_D⁴ - 2·cov(M, D)·m_M/m_D³     (per unit)

The result is an ordinary :class:`ArmStats` whose variance divided by n is the variance of
the ratio estimate, so the t-tests, sequential tests and the Bayesian engine take it as they
take a mean metric (the relative lift divides by |control ratio|, as for means).
"""

from __future__ import annotations

import numpy as np

from tuneloop.experiments.stats.errors import StatsError
from tuneloop.experiments.stats.moments import ArmStats, sample_mean, sample_variance


def covariance(n: int, sum_a: float, sum_b: float, sum_products: float) -> float:
    """Sample covariance of two per-unit quantities from their sums; 0 where n <= 1."""
    if n <= 1:
        return 0.0
    return (sum_products - sum_a * sum_b / n) / (n - 1)


def variance_of_ratios(
    mean_m: float, var_m: float, mean_d: float, var_d: float, cov_m_d: float
) -> float:
    """Delta-method variance of M / D (0 when the denominator's mean is 0, as gbstats)."""
    if mean_d == 0:
        return 0.0
    return var_m / mean_d**2 + var_d * mean_m**2 / mean_d**4 - 2 * cov_m_d * mean_m / mean_d**3


def ratio_stats(
    n: int,
    *,
    numerator_sum: float,
    numerator_sum_squares: float,
    denominator_sum: float,
    denominator_sum_squares: float,
    numerator_denominator_sum_products: float,
) -> ArmStats | StatsError:
    """One arm of a ratio metric, or ZERO_DENOMINATOR when its denominators sum to zero."""
    if n >= 1 and denominator_sum == 0:
        return StatsError.ZERO_DENOMINATOR
    if n < 1:
        return ArmStats(n=0, mean=0.0, variance=0.0)
    try:  # absurd sums under- or overflow: NaN, which the tests report as NOT_FINITE
        with np.errstate(all="ignore"):
            mean_m = float(sample_mean(n, numerator_sum))
            mean_d = float(sample_mean(n, denominator_sum))
            variance = variance_of_ratios(
                mean_m,
                float(sample_variance(n, numerator_sum, numerator_sum_squares)),
                mean_d,
                float(sample_variance(n, denominator_sum, denominator_sum_squares)),
                covariance(n, numerator_sum, denominator_sum, numerator_denominator_sum_products),
            )
            mean = numerator_sum / denominator_sum
    except (ZeroDivisionError, OverflowError):
        return StatsError.NOT_FINITE
    return ArmStats(n=int(n), mean=mean, variance=variance)
