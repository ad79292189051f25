"""Per-arm sufficient statistics: the mean and variance of a metric from its running sums.

A mean metric arrives as (n, sum, sum_squares), a proportion as (n, successes); both are
what SQL aggregates cheaply and what can be added across hours. The variance conventions
are gbstats' (``models/statistics.py``): the sample variance (n - 1) for means, p(1 - p)
for proportions, and 0 where it is undefined (n <= 1), so callers see ``ZERO_VARIANCE``
or ``NOT_ENOUGH_DATA`` rather than a division by zero.

The array functions accept scalars or numpy arrays of any shape, so a simulation of
thousands of experiments runs through exactly the code production uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ArmStats:
    """One arm's unit count, metric mean and per-unit metric variance."""

    n: int
    mean: float
    variance: float

    @property
    def std_error(self) -> float:
        """Standard error of the mean (0 when it is undefined)."""
        if self.n <= 0 or self.variance <= 0:
            return 0.0
        return float(np.sqrt(self.variance / self.n))


def mean_stats(n: int, total: float, sum_squares: float) -> ArmStats:
    """An arm of a mean metric from its unit count, sum and sum of squares."""
    return ArmStats(
        n=int(n),
        mean=float(sample_mean(n, total)),
        variance=float(sample_variance(n, total, sum_squares)),
    )


def proportion_stats(n: int, successes: float) -> ArmStats:
    """An arm of a proportion (conversion-style) metric from units and successes."""
    return ArmStats(
        n=int(n),
        mean=float(sample_mean(n, successes)),
        variance=float(proportion_variance(n, successes)),
    )


def sample_mean(n: npt.ArrayLike, total: npt.ArrayLike) -> FloatArray:
    """sum / n, and 0 for an empty arm."""
    n_, total_ = np.asarray(n, dtype=float), np.asarray(total, dtype=float)
    return np.divide(total_, n_, out=np.zeros(np.broadcast(n_, total_).shape), where=n_ > 0)


def sample_variance(
    n: npt.ArrayLike, total: npt.ArrayLike, sum_squares: npt.ArrayLike
) -> FloatArray:
    """The unbiased sample variance (sum_squares - sum²/n) / (n - 1); 0 where n <= 1."""
    n_ = np.asarray(n, dtype=float)
    total_, squares_ = np.asarray(total, dtype=float), np.asarray(sum_squares, dtype=float)
    shape = np.broadcast(n_, total_, squares_).shape
    safe_n = np.where(n_ > 1, n_, 2.0)
    with np.errstate(over="ignore", invalid="ignore"):  # absurd sums: inf/nan, caught later
        variance = (squares_ - total_**2 / safe_n) / (safe_n - 1)
    return np.where(n_ > 1, variance, 0.0).reshape(shape)


def proportion_variance(n: npt.ArrayLike, successes: npt.ArrayLike) -> FloatArray:
    """The Bernoulli variance p(1 - p) of a proportion; 0 for an empty arm."""
    p = sample_mean(n, successes)
    return p * (1 - p)
