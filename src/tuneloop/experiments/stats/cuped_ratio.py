"""CUPED for ratio metrics: the pooled theta and delta-method variances of GrowthBook.

Per unit the ratio has a numerator and a denominator after exposure (M, D) and before it
(M0, D0). Follows GrowthBook's current source (growthbook/growthbook
``models/statistics.py`` at 020838965897: ``RegressionAdjustedRatioStatistic``,
``compute_theta_regression_adjusted_ratio``; ``models/tests.py`` at 78e2595337:
``frequentist_variance_relative_cuped_ratio``):

    beta      = (mean M, mean D, mean M0, mean D0), Lambda their 4x4 per-unit covariance
    nabla     = (1/D, -M/D², -theta/D0, theta·M0/D0²)       (means)
    adjusted  = ΣM/ΣD - theta · ΣM0/ΣD0, per-unit variance nabla' Lambda nabla
    theta     = -(c_a + c_b) / (p_a + p_b) with, per arm and theta = 1,
                c = nabla[2:4]' Lambda[2:4, 0:2] nabla[0:2]
                p = nabla[2:4]' Lambda[2:4, 2:4] nabla[2:4]

|theta| < 1e-8 falls back to the unadjusted ratio (``NO_PRE_PERIOD_VARIANCE``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tuneloop.experiments.stats.cuped import CupedMoments, variance_reduction_of
from tuneloop.experiments.stats.errors import StatsError
from tuneloop.experiments.stats.frequentist import check_arms, difference_variance, welch_dof
from tuneloop.experiments.stats.moments import ArmStats
from tuneloop.experiments.stats.ratio import covariance, ratio_stats


@dataclass(frozen=True)
class RatioCupedArm:
    """One arm's post and pre numerator/denominator sums and their cross products."""

    n: int
    m: float  # Σ M
    m2: float  # Σ M²
    d: float  # Σ D
    d2: float  # Σ D²
    md: float  # Σ M·D
    m0: float  # Σ M0
    m02: float  # Σ M0²
    d0: float  # Σ D0
    d02: float  # Σ D0²
    m_m0: float  # Σ M·M0
    d_d0: float  # Σ D·D0
    m0_d0: float  # Σ M0·D0
    m_d0: float  # Σ M·D0
    m0_d: float  # Σ M0·D

    @cached_property
    def post(self) -> ArmStats | StatsError:
        return ratio_stats(
            self.n,
            numerator_sum=self.m,
            numerator_sum_squares=self.m2,
            denominator_sum=self.d,
            denominator_sum_squares=self.d2,
            numerator_denominator_sum_products=self.md,
        )

    @cached_property
    def beta(self) -> np.ndarray:
        return np.array([self.m, self.d, self.m0, self.d0]) / self.n

    @cached_property
    def lam(self) -> np.ndarray:
        """The per-unit covariance matrix of (M, D, M0, D0)."""
        sums = (self.m, self.d, self.m0, self.d0)
        products = {
            (0, 0): self.m2, (1, 1): self.d2, (2, 2): self.m02, (3, 3): self.d02,
            (0, 1): self.md, (0, 2): self.m_m0, (0, 3): self.m_d0,
            (1, 2): self.m0_d, (1, 3): self.d_d0, (2, 3): self.m0_d0,
        }  # fmt: skip
        out = np.zeros((4, 4))
        for (i, j), total in products.items():
            out[i, j] = out[j, i] = covariance(self.n, sums[i], sums[j], total)
        return out

    def nabla(self, theta: float) -> np.ndarray:
        m, d, m0, d0 = self.beta
        if d == 0 or d0 == 0:
            return np.zeros(4)
        return np.array([1 / d, -m / d**2, -theta / d0, theta * m0 / d0**2])

    def adjusted(self, theta: float) -> ArmStats:
        mean = self.m / self.d - theta * self.m0 / self.d0
        g = self.nabla(theta)
        return ArmStats(n=self.n, mean=float(mean), variance=float(g @ self.lam @ g))


def pooled_theta(control: RatioCupedArm, treatment: RatioCupedArm) -> float:
    """GrowthBook's theta for ratio metrics (0 when the pre-period has no variance)."""
    cov = var = 0.0
    for arm in (control, treatment):
        g = arm.nabla(1.0)
        cov += float(g[2:4] @ arm.lam[2:4, 0:2] @ g[0:2])
        var += float(g[2:4] @ arm.lam[2:4, 2:4] @ g[2:4])
    return 0.0 if var == 0 else -cov / var


def relative_variance(control: RatioCupedArm, treatment: RatioCupedArm, theta: float) -> float:
    """``frequentist_variance_relative_cuped_ratio``: the lift over |control post ratio|."""
    a, b = control.adjusted(theta), treatment.adjusted(theta)
    unadjusted, d_mean = control.m / control.d, control.beta[1]
    g_abs, den = b.mean - a.mean, abs(unadjusted)
    m_mean = control.beta[0]
    nabla_a = np.array(
        [
            -(den + g_abs) / d_mean / den**2,
            (m_mean * den / d_mean**2 + m_mean * g_abs / d_mean**2) / den**2,
            -control.nabla(theta)[2] / den,
            -control.nabla(theta)[3] / den,
        ]
    )
    nabla_b = treatment.nabla(theta) / den
    return float(
        nabla_a @ control.lam @ nabla_a / control.n
        + nabla_b @ treatment.lam @ nabla_b / treatment.n
    )


def ratio_cuped_moments(
    control: RatioCupedArm, treatment: RatioCupedArm, *, relative: bool
) -> CupedMoments | StatsError:
    """Treatment minus control of a ratio metric, CUPED-adjusted with the pooled theta."""
    try:  # absurd sums under- or overflow: reported, never raised
        with np.errstate(all="ignore"):
            return _ratio_cuped_moments(control, treatment, relative=relative)
    except (ZeroDivisionError, OverflowError):
        return StatsError.NOT_FINITE


def _ratio_cuped_moments(
    control: RatioCupedArm, treatment: RatioCupedArm, *, relative: bool
) -> CupedMoments | StatsError:
    post_a, post_b = control.post, treatment.post
    if isinstance(post_a, StatsError) or isinstance(post_b, StatsError):
        return post_a if isinstance(post_a, StatsError) else post_b  # type: ignore[return-value]
    if control.n >= 1 and (control.d0 == 0 or treatment.d0 == 0):
        return StatsError.ZERO_DENOMINATOR
    problem = check_arms(post_a, post_b, relative=relative)
    if problem is not None:
        return problem
    unadjusted = float(
        difference_variance(
            post_a.mean, post_a.variance, post_a.n, post_b.mean, post_b.variance, post_b.n,
            relative=relative,
        )
    )  # fmt: skip
    theta = pooled_theta(control, treatment)
    fallback = abs(theta) < 1e-8
    theta = 0.0 if fallback else theta
    a, b = control.adjusted(theta), treatment.adjusted(theta)
    if a.variance <= 0 or b.variance <= 0:
        return StatsError.ZERO_VARIANCE
    if relative:
        estimate = (b.mean - a.mean) / abs(post_a.mean)
        variance = relative_variance(control, treatment, theta)
    else:
        estimate = b.mean - a.mean
        variance = a.variance / a.n + b.variance / b.n
    if not (math.isfinite(estimate) and math.isfinite(variance)):
        return StatsError.NOT_FINITE
    if variance <= 0:
        return StatsError.ZERO_VARIANCE
    return CupedMoments(
        estimate=float(estimate),
        std_error=math.sqrt(variance),
        dof=float(welch_dof(a.variance, a.n, b.variance, b.n)),
        theta=theta,
        variance_reduction=variance_reduction_of(variance, unadjusted),
        error=StatsError.NO_PRE_PERIOD_VARIANCE if fallback else None,
    )
