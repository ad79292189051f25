"""Welch t-tests of treatment vs control: absolute differences and relative ones (delta method).

Follows gbstats' ``frequentist/tests.py`` at growthbook/growthbook commit 115869841407
(``TwoSidedTTest``, ``OneSidedTreatmentGreaterTTest``, ``OneSidedTreatmentLesserTTest``) and
its ``utils.py`` at 0ce79b2f9afc (``frequentist_diff``, ``frequentist_variance``):

    absolute  estimate = m_b - m_a            variance = v_b/n_b + v_a/n_a
    relative  estimate = (m_b - m_a) / |m_a|  variance = v_b/(m_a² n_b) + v_a m_b²/(m_a⁴ n_a)
    dof       Welch-Satterthwaite on the arms' variances (also for relative differences)

"greater" tests treatment > control with the interval [estimate - t·se, +inf); "less"
gives (-inf, estimate + t·se] (gbstats 0.8.0 on PyPI had ``estimate - t·se`` there, a bug
fixed in the current source). p-values use the t survival function, which keeps tiny
p-values accurate where gbstats' ``1 - cdf`` rounds them to 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from tuneloop.experiments.stats.errors import StatsError
from tuneloop.experiments.stats.lazy import scipy_stats
from tuneloop.experiments.stats.moments import ArmStats, FloatArray

Alternative = Literal["two-sided", "greater", "less"]
Difference = Literal["relative", "absolute"]


@dataclass(frozen=True)
class Inference:
    """What a test concluded about treatment minus control (relative or absolute).

    On an error every number is None and ``error`` says why. One-sided intervals have an
    infinite end.
    """

    estimate: float | None
    std_error: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    error: StatsError | None = None

    @property
    def significant(self) -> bool:
        """The interval excludes zero (equivalently p <= alpha for these tests)."""
        return self.ci is not None and (self.ci[0] > 0 or self.ci[1] < 0)

    @classmethod
    def failed(cls, error: StatsError) -> Inference:
        return cls(estimate=None, std_error=None, ci=None, p_value=None, error=error)

    def checked(self) -> Inference:
        """This result, or NOT_FINITE if overflow left a NaN or infinity where a number belongs."""
        if self.error is not None:
            return self
        numbers = (self.estimate, self.std_error, self.p_value)
        if all(x is not None and math.isfinite(x) for x in numbers) and not any(
            math.isnan(end) for end in self.ci or ()
        ):
            return self
        return Inference.failed(StatsError.NOT_FINITE)


def difference_estimate(
    mean_a: npt.ArrayLike, mean_b: npt.ArrayLike, *, relative: bool
) -> FloatArray:
    """m_b - m_a, or (m_b - m_a) / |m_a| when relative.

    Dividing by |m_a| (gbstats' current source) keeps the sign of the lift the sign of
    m_b - m_a when the control mean is negative; the variance is unchanged (it has m_a²).
    """
    a, b = np.asarray(mean_a, dtype=float), np.asarray(mean_b, dtype=float)
    return (b - a) / np.abs(a) if relative else b - a


def difference_variance(
    mean_a: npt.ArrayLike,
    var_a: npt.ArrayLike,
    n_a: npt.ArrayLike,
    mean_b: npt.ArrayLike,
    var_b: npt.ArrayLike,
    n_b: npt.ArrayLike,
    *,
    relative: bool,
) -> FloatArray:
    """Variance of the estimate; for a relative one, the delta method on m_b / m_a."""
    se2_a = np.asarray(var_a, dtype=float) / np.asarray(n_a, dtype=float)
    se2_b = np.asarray(var_b, dtype=float) / np.asarray(n_b, dtype=float)
    if not relative:
        return se2_b + se2_a
    a, b = np.asarray(mean_a, dtype=float), np.asarray(mean_b, dtype=float)
    return se2_b / a**2 + se2_a * b**2 / a**4


def welch_dof(
    var_a: npt.ArrayLike, n_a: npt.ArrayLike, var_b: npt.ArrayLike, n_b: npt.ArrayLike
) -> FloatArray:
    """Welch-Satterthwaite degrees of freedom of the two arms' variances."""
    va, vb = np.asarray(var_a, dtype=float), np.asarray(var_b, dtype=float)
    na, nb = np.asarray(n_a, dtype=float), np.asarray(n_b, dtype=float)
    return (vb / nb + va / na) ** 2 / (vb**2 / (nb**2 * (nb - 1)) + va**2 / (na**2 * (na - 1)))


def t_p_value(t_stat: npt.ArrayLike, dof: npt.ArrayLike, alternative: Alternative) -> FloatArray:
    """p-value of a t statistic against zero."""
    t = np.asarray(t_stat, dtype=float)
    if alternative == "greater":
        return np.asarray(scipy_stats.t.sf(t, dof), dtype=float)
    if alternative == "less":
        return np.asarray(scipy_stats.t.cdf(t, dof), dtype=float)
    return np.asarray(2 * scipy_stats.t.sf(np.abs(t), dof), dtype=float)


def t_halfwidth(
    std_error: npt.ArrayLike, dof: npt.ArrayLike, *, alpha: float, alternative: Alternative
) -> FloatArray:
    """Distance from the estimate to the finite end(s) of the confidence interval."""
    level = 1 - alpha / 2 if alternative == "two-sided" else 1 - alpha
    return np.asarray(scipy_stats.t.ppf(level, dof), dtype=float) * np.asarray(std_error)


def interval(estimate: float, halfwidth: float, alternative: Alternative) -> tuple[float, float]:
    """The interval a test reports: both ends, or one end and an infinite one."""
    if alternative == "greater":
        return (estimate - halfwidth, float("inf"))
    if alternative == "less":
        return (float("-inf"), estimate + halfwidth)
    return (estimate - halfwidth, estimate + halfwidth)


def check_arms(control: ArmStats, treatment: ArmStats, *, relative: bool) -> StatsError | None:
    """Why these two arms cannot be compared, or None. Same order of checks as gbstats,
    with an explicit 'not enough data' first (gbstats reports it as zero variance)."""
    if control.n < 2 or treatment.n < 2:
        return StatsError.NOT_ENOUGH_DATA
    if control.variance <= 0 or treatment.variance <= 0:
        return StatsError.ZERO_VARIANCE
    if relative and control.mean == 0:
        return StatsError.BASELINE_ZERO
    return None


def effect_moments(
    control: ArmStats, treatment: ArmStats, *, relative: bool
) -> tuple[float, float] | StatsError:
    """(estimate, standard error) of the difference, or the reason there is none."""
    problem = check_arms(control, treatment, relative=relative)
    if problem is not None:
        return problem
    with np.errstate(all="ignore"):
        estimate = difference_estimate(control.mean, treatment.mean, relative=relative)
        variance = difference_variance(
            control.mean,
            control.variance,
            control.n,
            treatment.mean,
            treatment.variance,
            treatment.n,
            relative=relative,
        )
    if not (np.isfinite(estimate) and np.isfinite(variance)):
        return StatsError.NOT_FINITE
    if not variance > 0:
        return StatsError.ZERO_VARIANCE
    return float(estimate), float(np.sqrt(variance))


def t_test(
    control: ArmStats,
    treatment: ArmStats,
    *,
    difference: Difference = "relative",
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> Inference:
    """Welch's t-test of treatment minus control, the fixed-horizon test (read it once)."""
    moments = effect_moments(control, treatment, relative=difference == "relative")
    if isinstance(moments, StatsError):
        return Inference.failed(moments)
    estimate, std_error = moments
    with np.errstate(all="ignore"):
        dof = float(welch_dof(control.variance, control.n, treatment.variance, treatment.n))
    return t_inference(estimate, std_error, dof, alpha=alpha, alternative=alternative)


def t_inference(
    estimate: float,
    std_error: float,
    dof: float,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> Inference:
    """The fixed-horizon test of an estimate already made (ratio and CUPED estimates too)."""
    with np.errstate(all="ignore"):  # overflow on absurd sums is reported as NOT_FINITE
        halfwidth = float(t_halfwidth(std_error, dof, alpha=alpha, alternative=alternative))
        p_value = float(t_p_value(estimate / std_error, dof, alternative))
    return Inference(
        estimate=estimate,
        std_error=std_error,
        ci=interval(estimate, halfwidth, alternative),
        p_value=p_value,
    ).checked()
