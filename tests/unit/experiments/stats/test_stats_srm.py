"""The SRM chi-square against gbstats' check_srm and scipy's chisquare."""

from __future__ import annotations

import pytest
from gbstats_reference import gb_utils, requires_gbstats
from scipy import stats as scipy_stats

from tuneloop.experiments.stats.errors import StatsError
from tuneloop.experiments.stats.srm import srm_check

CASES = [
    ([3407, 3461], [0.5, 0.5]),
    ([5000, 5210], [0.5, 0.5]),
    ([9120, 980], [0.9, 0.1]),
    ([9000, 1200], [0.9, 0.1]),
    ([1000, 1100, 950], [1, 1, 1]),
    ([400, 410, 0], [0.4, 0.4, 0.2]),
]


@requires_gbstats
@pytest.mark.parametrize(("counts", "weights"), CASES)
def test_matches_gbstats_check_srm(counts: list[int], weights: list[float]) -> None:
    assert gb_utils is not None
    assert srm_check(counts, weights).p_value == pytest.approx(
        gb_utils.check_srm(counts, weights), rel=1e-6
    )


@pytest.mark.parametrize(("counts", "weights"), CASES)
def test_matches_scipy_chisquare(counts: list[int], weights: list[float]) -> None:
    total = sum(counts)
    expected = [w / sum(weights) * total for w in weights]
    reference = scipy_stats.chisquare(counts, expected)
    result = srm_check(counts, weights)
    assert result.chi_square == pytest.approx(reference.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-6)
    assert list(result.expected) == pytest.approx(expected)


def test_flags_a_real_mismatch_and_passes_a_fair_split() -> None:
    assert srm_check([5000, 4990]).passed
    broken = srm_check([9000, 1200], [0.9, 0.1])
    assert not broken.passed
    assert broken.p_value is not None
    assert broken.p_value < 1e-6


def test_no_units_is_not_a_mismatch() -> None:
    result = srm_check([0, 0])
    assert result.p_value == 1.0
    assert result.passed


@pytest.mark.parametrize(
    ("counts", "weights"), [([10, 10], [1.0]), ([10], [1.0]), ([5, 5], [0, 0])]
)
def test_weights_that_do_not_fit_are_an_error_code(counts: list[int], weights: list[float]) -> None:
    result = srm_check(counts, weights)
    assert result.error == StatsError.WEIGHTS_MISMATCH
    assert not result.passed
