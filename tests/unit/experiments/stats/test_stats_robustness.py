"""Whatever the sufficient statistics, the tests return numbers or an error code: never raise."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tuneloop.experiments.stats.analysis import AnalysisRequest, analyze
from tuneloop.experiments.stats.frequentist import t_test
from tuneloop.experiments.stats.moments import mean_stats
from tuneloop.experiments.stats.sequential import sequential_test

counts = st.integers(min_value=0, max_value=10**9)
values = st.floats(min_value=-1e200, max_value=1e200, allow_nan=False)
squares = st.floats(min_value=0, max_value=1e300, allow_nan=False)
alternatives = st.sampled_from(["two-sided", "greater", "less"])
differences = st.sampled_from(["relative", "absolute"])


def finite_or_error(result) -> bool:
    if result.error is not None:
        return result.estimate is None and result.p_value is None
    numbers = [result.estimate, result.std_error, result.p_value]
    ends_ok = all(not math.isnan(end) for end in result.ci)
    return all(math.isfinite(x) for x in numbers) and ends_ok and 0 <= result.p_value <= 1


@settings(max_examples=200, deadline=None, derandomize=True)
@given(counts, values, squares, counts, values, squares, alternatives, differences)
def test_tests_never_raise_and_never_return_nan(
    n_a: int,
    s_a: float,
    q_a: float,
    n_b: int,
    s_b: float,
    q_b: float,
    alternative: str,
    difference: str,
) -> None:
    control, treatment = mean_stats(n_a, s_a, q_a), mean_stats(n_b, s_b, q_b)
    options = {"alternative": alternative, "difference": difference}
    assert finite_or_error(t_test(control, treatment, **options))  # type: ignore[arg-type]
    assert finite_or_error(sequential_test(control, treatment, **options))  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    st.lists(st.tuples(counts, st.integers(min_value=0, max_value=10**9)), min_size=2, max_size=4)
)
def test_analyze_never_raises_on_valid_proportions(arms: list[tuple[int, int]]) -> None:
    payload = [
        {"name": f"arm{i}", "n": n, "successes": min(successes, n)}
        for i, (n, successes) in enumerate(arms)
    ]
    result = analyze(AnalysisRequest.model_validate({"metric": "proportion", "arms": payload}))
    assert len(result.comparisons) == len(arms) - 1
    assert result.srm.p_value is not None
