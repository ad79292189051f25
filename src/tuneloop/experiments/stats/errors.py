"""The error codes statistics return inside their results instead of raising."""

from __future__ import annotations

from enum import StrEnum


class StatsError(StrEnum):
    """Why a statistic could not be computed; a dashboard shows it, nothing raises."""

    NOT_ENOUGH_DATA = "NOT_ENOUGH_DATA"
    """An arm has fewer than two units (a variance needs two)."""

    ZERO_VARIANCE = "ZERO_VARIANCE"
    """An arm's variance, or the variance of the difference, is zero (or negative)."""

    BASELINE_ZERO = "BASELINE_ZERO"
    """The control mean is zero, so a relative difference is undefined."""

    ALPHA_TOO_LARGE = "ALPHA_TOO_LARGE"
    """A one-sided sequential interval needs alpha < 0.5 (its mixing parameter uses 2·alpha)."""

    NOT_FINITE = "NOT_FINITE"
    """The arithmetic overflowed: sums far outside any real metric's range."""

    WEIGHTS_MISMATCH = "WEIGHTS_MISMATCH"
    """The planned weights do not match the arms (count, or no positive weight)."""

    NO_TRAFFIC = "NO_TRAFFIC"
    """No units have arrived yet, so no traffic rate to extrapolate from."""

    UNREACHABLE = "UNREACHABLE"
    """No sample size reaches the requested power (a zero effect, say)."""

    ZERO_DENOMINATOR = "ZERO_DENOMINATOR"
    """A ratio metric's denominator sums to zero in an arm (no impressions, no tokens)."""

    NO_PRE_PERIOD_VARIANCE = "NO_PRE_PERIOD_VARIANCE"
    """CUPED found no variance before exposure (theta 0): the analysis is unadjusted."""
