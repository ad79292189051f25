"""Per-arm means and variances from running sums, against numpy on the raw values."""

from __future__ import annotations

import numpy as np
import pytest

from tuneloop.experiments.stats.moments import (
    mean_stats,
    proportion_stats,
    proportion_variance,
    sample_variance,
)


def test_mean_stats_match_numpy_on_the_raw_values() -> None:
    values = np.random.default_rng(7).gamma(2.0, 3.0, size=1234)
    arm = mean_stats(values.size, values.sum(), (values**2).sum())
    assert arm.n == 1234
    assert arm.mean == pytest.approx(values.mean(), rel=1e-12)
    assert arm.variance == pytest.approx(values.var(ddof=1), rel=1e-9)
    assert arm.std_error == pytest.approx(values.std(ddof=1) / np.sqrt(values.size), rel=1e-9)


def test_proportion_stats_use_the_bernoulli_variance() -> None:
    arm = proportion_stats(200, 30)
    assert arm.mean == pytest.approx(0.15)
    assert arm.variance == pytest.approx(0.15 * 0.85)


@pytest.mark.parametrize("n", [0, 1])
def test_variance_is_zero_without_two_units(n: int) -> None:
    assert mean_stats(n, 5.0 * n, 25.0 * n).variance == 0
    assert mean_stats(0, 0, 0).mean == 0
    assert proportion_stats(0, 0).variance == 0


def test_the_array_forms_broadcast_like_numpy() -> None:
    n = np.array([[10, 20], [1, 0]])
    total = np.array([[5.0, 8.0], [1.0, 0.0]])
    variance = sample_variance(n, total, total)  # 0/1 values: sum of squares == sum
    assert variance.shape == (2, 2)
    assert variance[0, 0] == pytest.approx(np.var([1] * 5 + [0] * 5, ddof=1))
    assert variance[1].tolist() == [0.0, 0.0]
    assert proportion_variance(n, total)[0, 1] == pytest.approx(0.4 * 0.6)
