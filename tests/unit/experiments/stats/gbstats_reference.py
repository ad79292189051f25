"""GrowthBook's gbstats as a reference: the PyPI release where it is importable, and a small
test-only transcription of the current source where the release differs or lacks a method.

PyPI's gbstats 0.8.0 pins numpy<2 and pandas<2, so it is installed beside our lock with
``pip install --no-deps -r requirements-reference.txt``; without it the tests that need
it skip and say so. Its frequentist, sequential two-sided and SRM code imports and runs on
numpy 2 / pandas 3.

The transcription restates, in our own words, formulas from github.com/growthbook/growthbook
(MIT licence), ``packages/stats/gbstats/frequentist/tests.py`` at commit
115869841407d770b154f6c44dfb09ffe2b79264:

- ``one_sided_confidence_interval``: "less" is (-inf, estimate + halfwidth]; 0.8.0 had
  ``estimate - halfwidth`` as the upper end;
- ``sequential_rho(alpha, N, two_sided)`` with 2·alpha for one-sided tests;
- ``sequential_interval_halfwidth_one_sided`` (eq. 134 of arXiv:2103.06476v7);
- ``SequentialOneSidedTreatmentLesserTTest.compute_p_value``, a bisection on alpha in
  [1e-5, 0.4999] with rho held fixed (the Greater test reuses it with ``lesser=False``).

None of these exist in gbstats 0.8.0. The published expected values quoted in the tests come
from ``packages/stats/tests/frequentist/test_tests.py`` at the same commit.
"""

from __future__ import annotations

import math
from types import ModuleType

import pytest

gb_tests: ModuleType | None
gb_statistics: ModuleType | None
gb_utils: ModuleType | None
try:
    from gbstats import utils as gb_utils
    from gbstats.frequentist import tests as gb_tests
    from gbstats.models import statistics as gb_statistics

    GBSTATS_MISSING = ""
except Exception as exc:  # not installed, or broken on this numpy: skip, saying why
    gb_tests = gb_statistics = gb_utils = None
    GBSTATS_MISSING = (
        f"gbstats 0.8.0 is not importable ({exc!r}); install it with "
        "`.venv/bin/pip install --no-deps -r requirements-reference.txt`"
    )

requires_gbstats = pytest.mark.skipif(bool(GBSTATS_MISSING), reason=GBSTATS_MISSING)

# The shared example of GrowthBook's own frequentist tests (SampleMeanStatistic inputs).
GB_CONTROL = {"n": 3000, "sum": 1396.87, "sum_squares": 52377.9767}
GB_TREATMENT = {"n": 3461, "sum": 2422.7, "sum_squares": 134698.29}


def sequential_rho(alpha: float, tuning: float, *, two_sided: bool) -> float:
    a = alpha if two_sided else 2 * alpha
    return math.sqrt((-2 * math.log(a) + math.log(-2 * math.log(a) + 1)) / tuning)


def halfwidth_one_sided(s2: float, n: float, alpha: float, rho: float) -> float:
    scale = 2 * (n * rho**2 + 1) / (n * rho) ** 2
    return math.sqrt(s2 * scale * math.log(1 + math.sqrt(n * rho**2 + 1) / (2 * alpha)))


def sequential_one_sided_interval(
    estimate: float, std_error: float, n: float, *, alpha: float, tuning: float, lesser: bool
) -> tuple[float, float]:
    rho = sequential_rho(alpha, tuning, two_sided=False)
    halfwidth = halfwidth_one_sided(std_error**2 * n, n, alpha, rho)
    return (-math.inf, estimate + halfwidth) if lesser else (estimate - halfwidth, math.inf)


def sequential_one_sided_p_value(
    estimate: float, std_error: float, n: float, *, alpha: float, tuning: float, lesser: bool
) -> tuple[float | None, tuple[float, float]]:
    """gbstats' bisection: (p-value or None if not converged, final bracket [low, high])."""
    rho = sequential_rho(alpha, tuning, two_sided=False)

    def finite_end(a: float) -> float:
        halfwidth = halfwidth_one_sided(std_error**2 * n, n, a, rho)
        return estimate + halfwidth if lesser else estimate - halfwidth

    def not_yet(end: float) -> bool:  # the interval still contains zero at this alpha
        return end > 0 if lesser else end < 0

    low, high, tol = 1e-5, 0.4999, 1e-6
    if not not_yet(finite_end(low)):
        return low, (0.0, low)
    if not_yet(finite_end(high)):
        return high, (high, 1.0)
    alpha_now, diff = 0.5 * (low + high), 0.0
    for _ in range(100):
        diff = finite_end(alpha_now)
        if not_yet(diff):
            low = alpha_now
        else:
            high = alpha_now
        alpha_now = 0.5 * (low + high)
        if abs(diff) < tol:
            break
    return (alpha_now if abs(diff) < tol else None), (low, high)


def lesser_upper_bound(estimate: float, halfwidth: float) -> float:
    """The current source's finite end of a "less" interval (0.8.0: estimate - halfwidth)."""
    return estimate + halfwidth
