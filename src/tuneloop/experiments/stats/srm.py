"""Sample-ratio-mismatch check: do the arms' unit counts match the planned traffic weights?

A mismatch means assignment or logging is broken, and then no comparison can be trusted.
Pearson's chi-square against the planned split, as gbstats' ``utils.check_srm``
(growthbook/growthbook commit 0ce79b2f9afc): arms with a non-positive weight add nothing
to the statistic, the degrees of freedom are (arms - 1), and no units at all gives p = 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tuneloop.experiments.stats.errors import StatsError
from tuneloop.experiments.stats.lazy import scipy_stats

DEFAULT_SRM_THRESHOLD = 0.001
"""GrowthBook's default: a p-value below it flags a mismatch."""


@dataclass(frozen=True)
class SrmResult:
    """The chi-square check; ``passed`` is False when p < threshold or on an error."""

    p_value: float | None
    chi_square: float | None
    expected: tuple[float, ...]
    threshold: float
    error: StatsError | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.p_value is not None and self.p_value >= self.threshold


def srm_check(
    counts: Sequence[int],
    weights: Sequence[float] | None = None,
    *,
    threshold: float = DEFAULT_SRM_THRESHOLD,
) -> SrmResult:
    """Compare observed unit counts per arm with the planned weights (equal by default)."""
    planned = list(weights) if weights is not None else [1.0] * len(counts)
    total_weight = sum(planned)
    if len(planned) != len(counts) or len(counts) < 2 or total_weight <= 0:
        return SrmResult(None, None, (), threshold, StatsError.WEIGHTS_MISMATCH)
    total = sum(counts)
    expected = tuple(max(w, 0.0) / total_weight * total for w in planned)
    if total == 0:
        return SrmResult(1.0, 0.0, expected, threshold)
    chi_square = sum(
        (observed - e) ** 2 / e
        for observed, e, w in zip(counts, expected, planned, strict=True)
        if w > 0
    )
    p_value = float(scipy_stats.chi2.sf(chi_square, len(counts) - 1))
    return SrmResult(p_value, float(chi_square), expected, threshold)
