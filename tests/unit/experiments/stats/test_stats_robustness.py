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


def comparison_ok(c: dict) -> bool:  # type: ignore[type-arg]
    if c["error"] is not None:
        return c["estimate"] is None and c["p_value"] is None and c["chance_to_win"] is None
    numbers = [c["estimate"], c["std_error"]]
    numbers += [c["p_value"]] if c["p_value"] is not None else [c["chance_to_win"]]
    return all(x is not None and math.isfinite(x) for x in numbers)


arm_sums = st.tuples(
    st.integers(min_value=0, max_value=10**6), values, squares, values, squares, values
)
engines = st.sampled_from(["frequentist", "bayesian"])


@settings(max_examples=150, deadline=None, derandomize=True)
@given(arm_sums, arm_sums, engines, differences)
def test_ratio_arms_never_raise(a: tuple, b: tuple, engine: str, difference: str) -> None:  # type: ignore[type-arg]
    names = (
        "n",
        "numerator_sum",
        "numerator_sum_squares",
        "denominator_sum",
        "denominator_sum_squares",
        "numerator_denominator_sum_products",
    )
    arms = [
        {"name": f"arm{i}", **dict(zip(names, sums, strict=True))} for i, sums in enumerate((a, b))
    ]
    request = {"metric": "ratio", "engine": engine, "difference": difference, "arms": arms}
    result = analyze(AnalysisRequest.model_validate(request)).model_dump()
    assert all(comparison_ok(c) for c in result["comparisons"])


@settings(max_examples=150, deadline=None, derandomize=True)
@given(arm_sums, arm_sums, squares, squares, engines, differences)
def test_cuped_arms_never_raise(
    a: tuple,
    b: tuple,
    pre_a: float,
    pre_b: float,
    engine: str,
    difference: str,  # type: ignore[type-arg]
) -> None:
    arms = [
        {
            "name": f"arm{i}",
            "n": sums[0],
            "sum": sums[1],
            "sum_squares": sums[2],
            "pre_sum": sums[3],
            "pre_sum_squares": pre,
            "post_pre_sum_products": sums[5],
        }
        for i, (sums, pre) in enumerate(((a, pre_a), (b, pre_b)))
    ]
    request = {"metric": "mean", "engine": engine, "difference": difference, "arms": arms}
    result = analyze(AnalysisRequest.model_validate(request)).model_dump()
    assert all(comparison_ok(c) for c in result["comparisons"])
