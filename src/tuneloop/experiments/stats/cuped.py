"""CUPED (regression adjustment): one pooled theta over both arms, from pre-exposure values.

Each unit carries its metric after exposure (post) and the same metric in a window before
its first exposure (pre). Subtracting theta·pre removes the part of the metric that the
unit's history predicts, which shrinks the variance by about corr(post, pre)² without
biasing the difference (pre cannot depend on the arm). This follows gbstats' current source
(growthbook/growthbook ``models/statistics.py`` at 020838965897: ``compute_theta``,
``RegressionAdjustedStatistic``; ``models/tests.py`` at 78e2595337:
``frequentist_variance_relative_cuped``, ``BaseABTest.initialize_theta``):

    theta     = cov(post, pre) / var(pre), both over the two arms' units pooled
    mean      = mean(post) - theta · mean(pre)                  per arm
    variance  = var(post) + theta²·var(pre) - 2·theta·cov(post, pre)
    absolute  estimate = mean_b - mean_a, variance v_b/n_b + v_a/n_a
    relative  estimate = (mean_b - mean_a) / |post mean_a|, variance
              v_b/(n_b m²) + (var_a(post)·mb²/m² - 2θ·cov_a·mb/m + θ²·var_a(pre)) / (n_a m²)
              with m = post mean of the control and mb the treatment's post mean

A theta of 0 (no variance before exposure) falls back to the unadjusted analysis, as
gbstats does; the result then says ``NO_PRE_PERIOD_VARIANCE``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tuneloop.experiments.stats.errors import StatsError
from tuneloop.experiments.stats.frequentist import (
    check_arms,
    difference_estimate,
    difference_variance,
    welch_dof,
)
from tuneloop.experiments.stats.moments import ArmStats, mean_stats, sample_variance
from tuneloop.experiments.stats.ratio import covariance


@dataclass(frozen=True)
class CupedArm:
    """One arm's post and pre sums, and the sum of their per-unit products."""

    n: int
    sum: float
    sum_squares: float
    pre_sum: float
    pre_sum_squares: float
    post_pre_sum_products: float

    # cached: a simulation calls these thousands of times (frozen dataclasses allow it)
    @cached_property
    def post(self) -> ArmStats:
        return mean_stats(self.n, self.sum, self.sum_squares)

    @cached_property
    def pre(self) -> ArmStats:
        return mean_stats(self.n, self.pre_sum, self.pre_sum_squares)

    @cached_property
    def covariance(self) -> float:
        return covariance(self.n, self.sum, self.pre_sum, self.post_pre_sum_products)

    def adjusted(self, theta: float) -> ArmStats:
        """The arm's adjusted mean and per-unit variance."""
        post, pre = self.post, self.pre
        variance = post.variance + theta**2 * pre.variance - 2 * theta * self.covariance
        return ArmStats(n=self.n, mean=post.mean - theta * pre.mean, variance=variance)


@dataclass(frozen=True)
class CupedMoments:
    """The adjusted estimate, its standard error and what the adjustment did."""

    estimate: float
    std_error: float
    dof: float
    theta: float
    variance_reduction: float
    error: StatsError | None = None


def pooled_theta(control: CupedArm, treatment: CupedArm) -> float:
    """cov(post, pre) / var(pre) over both arms' units; 0 when either variance is 0."""
    n = control.n + treatment.n
    if n <= 1:
        return 0.0
    post_var = float(
        sample_variance(n, control.sum + treatment.sum, control.sum_squares + treatment.sum_squares)
    )
    pre_var = float(
        sample_variance(
            n,
            control.pre_sum + treatment.pre_sum,
            control.pre_sum_squares + treatment.pre_sum_squares,
        )
    )
    if pre_var <= 0 or post_var <= 0:
        return 0.0
    joint_cov = covariance(
        n,
        control.sum + treatment.sum,
        control.pre_sum + treatment.pre_sum,
        control.post_pre_sum_products + treatment.post_pre_sum_products,
    )
    return joint_cov / pre_var


def relative_cuped_variance(control: CupedArm, treatment: CupedArm, theta: float) -> float:
    """Delta-method variance of the adjusted lift over |control post mean| (gbstats)."""
    m = control.post.mean
    mb = treatment.post.mean
    v_trt = treatment.adjusted(theta).variance / (treatment.n * m**2)
    v_ctrl = (
        control.post.variance * mb**2 / m**2
        - 2 * theta * control.covariance * mb / m
        + theta**2 * control.pre.variance
    ) / (control.n * m**2)
    return v_trt + v_ctrl


def cuped_moments(
    control: CupedArm, treatment: CupedArm, *, relative: bool
) -> CupedMoments | StatsError:
    """Treatment minus control, adjusted with the pooled theta (or unadjusted if theta is 0)."""
    try:  # absurd sums under- or overflow: reported, never raised
        with np.errstate(all="ignore"):
            return _cuped_moments(control, treatment, relative=relative)
    except (ZeroDivisionError, OverflowError):
        return StatsError.NOT_FINITE


def _cuped_moments(
    control: CupedArm, treatment: CupedArm, *, relative: bool
) -> CupedMoments | StatsError:
    problem = check_arms(control.post, treatment.post, relative=relative)
    if problem is not None:
        return problem
    unadjusted = difference_variance(
        control.post.mean,
        control.post.variance,
        control.n,
        treatment.post.mean,
        treatment.post.variance,
        treatment.n,
        relative=relative,
    )
    theta = pooled_theta(control, treatment)
    a, b = control.adjusted(theta), treatment.adjusted(theta)
    if a.variance <= 0 or b.variance <= 0:
        return StatsError.ZERO_VARIANCE
    if relative:
        estimate = (b.mean - a.mean) / abs(control.post.mean)
        variance = relative_cuped_variance(control, treatment, theta)
    else:
        estimate = float(difference_estimate(a.mean, b.mean, relative=False))
        variance = float(
            difference_variance(a.mean, a.variance, a.n, b.mean, b.variance, b.n, relative=False)
        )
    if not (math.isfinite(estimate) and math.isfinite(variance)):
        return StatsError.NOT_FINITE
    if variance <= 0:
        return StatsError.ZERO_VARIANCE
    return CupedMoments(
        estimate=estimate,
        std_error=math.sqrt(variance),
        dof=float(welch_dof(a.variance, a.n, b.variance, b.n)),
        theta=theta,
        variance_reduction=variance_reduction_of(variance, float(unadjusted)),
        error=StatsError.NO_PRE_PERIOD_VARIANCE if theta == 0 else None,
    )


def variance_reduction_of(adjusted: float, unadjusted: float) -> float:
    """1 - adjusted / unadjusted variance of the estimate (0 when that is undefined)."""
    ratio = adjusted / unadjusted if unadjusted > 0 else 1.0
    return 1 - ratio if math.isfinite(ratio) else 0.0
