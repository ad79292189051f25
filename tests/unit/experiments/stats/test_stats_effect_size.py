"""Cohen's d and h, and the small / medium / large label."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tuneloop.experiments.stats.effect_size import (
    cohens_d,
    cohens_h,
    effect_size_label,
    standardized_effect,
)
from tuneloop.experiments.stats.moments import mean_stats, proportion_stats


def test_cohens_d_uses_the_pooled_standard_deviation() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(10, 2, size=300), rng.normal(11, 3, size=200)
    pooled = math.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / 498)
    d = cohens_d(
        mean_stats(a.size, a.sum(), (a**2).sum()), mean_stats(b.size, b.sum(), (b**2).sum())
    )
    assert d == pytest.approx((b.mean() - a.mean()) / pooled, rel=1e-9)


def test_cohens_h_for_proportions() -> None:
    assert cohens_h(0.5, 0.5) == 0
    assert cohens_h(0.0, 1.0) == pytest.approx(math.pi)
    got = standardized_effect(proportion_stats(100, 40), proportion_stats(100, 65), proportion=True)
    assert got == pytest.approx(2 * math.asin(math.sqrt(0.65)) - 2 * math.asin(math.sqrt(0.4)))


@pytest.mark.parametrize(
    ("effect", "label"),
    [
        (0.0, "small"),
        (-0.3, "small"),
        (0.49, "small"),
        (0.5, "medium"),
        (-0.79, "medium"),
        (0.8, "large"),
        (-2.0, "large"),
    ],
)
def test_labels_follow_cohens_cut_points(effect: float, label: str) -> None:
    assert effect_size_label(effect) == label


def test_undefined_effects_are_none() -> None:
    assert cohens_d(mean_stats(1, 1, 1), mean_stats(5, 5, 7)) is None
    assert cohens_d(mean_stats(5, 5, 5), mean_stats(5, 5, 5)) is None
    assert (
        standardized_effect(proportion_stats(0, 0), proportion_stats(5, 1), proportion=True) is None
    )
