"""Power, minimum detectable effect, required sample size and time to a decision.

Normal approximation throughout (the samples that matter here are large). Everything is
expressed through the standard error of the estimate at a total sample size N,
se² = s² / N, where s² (:func:`unit_variance`) folds in the arms' variances and the
traffic split. A test rejects when the estimate passes a critical distance from zero:

    fixed       z(1 - alpha/2) · se  (two-sided) or z(1 - alpha) · se  (one-sided)
    sequential  the always-valid half-width at N (see ``sequential``)

and power = P(|estimate| beyond it) under the assumed effect, both tails for a two-sided
test (as statsmodels' ``NormalIndPower``). For the sequential method this is the chance to
have crossed *at N*; crossing at an earlier look only adds to it, so it is a lower bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tuneloop.experiments.stats.errors import StatsError
from tuneloop.experiments.stats.frequentist import Alternative, Difference
from tuneloop.experiments.stats.lazy import optimize, scipy_stats
from tuneloop.experiments.stats.moments import ArmStats
from tuneloop.experiments.stats.sequential import (
    DEFAULT_TUNING,
    halfwidth_one_sided,
    halfwidth_two_sided,
    sequential_rho,
)

Method = Literal["fixed", "sequential"]

MAX_UNITS = 1e13


@dataclass(frozen=True)
class Design:
    """How the test will be read: significance level, sidedness, method."""

    alpha: float = 0.05
    alternative: Alternative = "two-sided"
    method: Method = "fixed"
    tuning: float = DEFAULT_TUNING


@dataclass(frozen=True)
class Eta:
    """How long until the planned sample size is reached at the current traffic rate."""

    hours: float | None
    days: float | None
    remaining_units: float | None
    error: StatsError | None = None


def unit_variance(
    control: ArmStats,
    *,
    effect: float,
    difference: Difference = "relative",
    weights: Sequence[float] = (0.5, 0.5),
    proportion: bool = False,
) -> float:
    """s² such that the estimate's variance is s² / N at N total units.

    The treatment mean is the control mean moved by ``effect``; its variance is the
    control's (a mean metric) or p(1 - p) at the moved mean (a proportion).
    """
    w_a, w_b = weights[0] / sum(weights), weights[1] / sum(weights)
    m_a = control.mean
    m_b = m_a * (1 + effect) if difference == "relative" else m_a + effect
    v_a = control.variance
    v_b = m_b * (1 - m_b) if proportion else control.variance
    if difference == "absolute":
        return v_b / w_b + v_a / w_a
    return v_b / (m_a**2 * w_b) + v_a * m_b**2 / (m_a**4 * w_a)


def critical_distance(std_error: float, n: float, design: Design) -> float:
    """How far from zero the estimate must be for the test to reject."""
    two_sided = design.alternative == "two-sided"
    if design.method == "fixed":
        level = 1 - design.alpha / 2 if two_sided else 1 - design.alpha
        return float(scipy_stats.norm.ppf(level)) * std_error
    rho = sequential_rho(design.alpha, design.tuning, two_sided=two_sided)
    width = halfwidth_two_sided if two_sided else halfwidth_one_sided
    return float(width(std_error, n, alpha=design.alpha, rho=rho))


def power(effect: float, *, std_error: float, n: float, design: Design = Design()) -> float:
    """Probability that the test rejects when the true difference is ``effect``."""
    critical = critical_distance(std_error, n, design)
    upper = float(scipy_stats.norm.cdf((effect - critical) / std_error))
    lower = float(scipy_stats.norm.cdf((-effect - critical) / std_error))
    if design.alternative == "greater":
        return upper
    if design.alternative == "less":
        return lower
    return upper + lower


def minimum_detectable_effect(
    *, std_error: float, n: float, target_power: float = 0.8, design: Design = Design()
) -> float:
    """The smallest effect (in the test's direction; positive for two-sided) with that power."""
    sign = -1.0 if design.alternative == "less" else 1.0
    guess = critical_distance(std_error, n, design) + scipy_stats.norm.ppf(target_power) * std_error

    def shortfall(size: float) -> float:
        return power(sign * size, std_error=std_error, n=n, design=design) - target_power

    return sign * float(optimize.brentq(shortfall, 0.0, 2 * guess, xtol=1e-14, rtol=1e-12))


def required_sample_size(
    effect: float, *, unit_variance: float, target_power: float = 0.8, design: Design = Design()
) -> float | StatsError:
    """Total units (all arms) at which the test reaches ``target_power`` for ``effect``."""

    def shortfall(log_n: float) -> float:
        n = math.exp(log_n)
        se = math.sqrt(unit_variance / n)
        return power(effect, std_error=se, n=n, design=design) - target_power

    low, high = math.log(2.0), math.log(MAX_UNITS)
    if effect == 0 or unit_variance <= 0 or shortfall(high) < 0:
        return StatsError.UNREACHABLE
    if shortfall(low) >= 0:
        return 2.0
    return math.exp(optimize.brentq(shortfall, low, high, xtol=1e-13, rtol=1e-13))


def time_to_decision(*, required_units: float, current_units: int, elapsed_hours: float) -> Eta:
    """Hours and days until ``required_units`` at the rate seen so far (0 once reached)."""
    if current_units <= 0 or elapsed_hours <= 0:
        return Eta(None, None, None, StatsError.NO_TRAFFIC)
    remaining = max(required_units - current_units, 0.0)
    hours = remaining / (current_units / elapsed_hours)
    return Eta(hours=hours, days=hours / 24, remaining_units=remaining)
