"""The public JSON shape: field names, defaults, error codes in results, clear validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from tuneloop.errors import InvalidInputError
from tuneloop.experiments.stats.analysis import AnalysisRequest, analyze, parse_request
from tuneloop.experiments.stats.frequentist import t_test
from tuneloop.experiments.stats.moments import mean_stats, proportion_stats
from tuneloop.experiments.stats.sequential import sequential_test

EXAMPLE: dict[str, Any] = {
    "metric": "mean",
    "difference": "relative",
    "alpha": 0.05,
    "alternative": "two-sided",
    "method": "fixed",
    "sequential_tuning": 5000,
    "weights": [0.5, 0.5],
    "arms": [
        {"name": "control", "n": 3407, "sum": 1396.87, "sum_squares": 52377.97},
        {"name": "candidate", "n": 3461, "sum": 2422.7, "sum_squares": 134698.29},
    ],
}


def run(payload: dict[str, Any]) -> dict[str, Any]:
    return json.loads(analyze(parse_request(json.dumps(payload))).model_dump_json())


def test_the_documented_example_keeps_its_field_names() -> None:
    out = run(EXAMPLE)
    comparison = out["comparisons"][0]
    assert {"arm", "estimate", "std_error", "ci", "p_value", "error"} <= comparison.keys()
    assert "p_value" in out["srm"]
    expected = t_test(mean_stats(3407, 1396.87, 52377.97), mean_stats(3461, 2422.7, 134698.29))
    assert comparison["arm"] == "candidate"
    assert comparison["estimate"] == pytest.approx(expected.estimate)
    assert comparison["std_error"] == pytest.approx(expected.std_error)
    assert comparison["ci"] == pytest.approx(list(expected.ci))
    assert comparison["p_value"] == pytest.approx(expected.p_value)
    assert comparison["error"] is None
    assert comparison["significant"] is False
    assert out["srm"]["passed"] is True


def test_defaults_are_a_sequential_two_sided_relative_mean_test_with_equal_weights() -> None:
    request = AnalysisRequest.model_validate({"arms": EXAMPLE["arms"]})
    assert (request.metric, request.difference, request.alternative, request.method) == (
        "mean",
        "relative",
        "two-sided",
        "sequential",
    )
    assert request.alpha == 0.05
    assert request.planned_weights() == [1.0, 1.0]
    comparison = analyze(request).comparisons[0]
    expected = sequential_test(
        mean_stats(3407, 1396.87, 52377.97), mean_stats(3461, 2422.7, 134698.29)
    )
    assert comparison.p_value == pytest.approx(expected.p_value)


def test_proportions_and_several_arms_each_against_the_control() -> None:
    out = run(
        {
            "metric": "proportion",
            "method": "fixed",
            "difference": "absolute",
            "weights": [0.8, 0.1, 0.1],
            "arms": [
                {"name": "baseline", "n": 8000, "successes": 400},
                {"name": "a", "n": 1000, "successes": 70},
                {"name": "b", "n": 1010, "successes": 49},
            ],
        }
    )
    assert [c["arm"] for c in out["comparisons"]] == ["a", "b"]
    control = proportion_stats(8000, 400)
    for comparison, (n, successes) in zip(
        out["comparisons"], [(1000, 70), (1010, 49)], strict=True
    ):
        expected = t_test(control, proportion_stats(n, successes), difference="absolute")
        assert comparison["estimate"] == pytest.approx(expected.estimate)
        assert comparison["p_value"] == pytest.approx(expected.p_value)
    assert out["srm"]["expected"] == pytest.approx([8008.0, 1001.0, 1001.0])


def test_one_sided_intervals_write_null_for_the_open_end() -> None:
    out = run({**EXAMPLE, "alternative": "greater"})
    low, high = out["comparisons"][0]["ci"]
    assert high is None
    assert isinstance(low, float)
    assert "Infinity" not in analyze(parse_request(json.dumps(EXAMPLE))).model_dump_json()


@pytest.mark.parametrize(
    ("arms", "error"),
    [
        (
            [
                {"name": "c", "n": 0, "sum": 0, "sum_squares": 0},
                {"name": "t", "n": 5, "sum": 5, "sum_squares": 9},
            ],
            "NOT_ENOUGH_DATA",
        ),
        (
            [
                {"name": "c", "n": 10, "sum": 10, "sum_squares": 10},
                {"name": "t", "n": 5, "sum": 5, "sum_squares": 9},
            ],
            "ZERO_VARIANCE",
        ),
        (
            [
                {"name": "c", "n": 10, "sum": 0, "sum_squares": 10},
                {"name": "t", "n": 5, "sum": 5, "sum_squares": 9},
            ],
            "BASELINE_ZERO",
        ),
    ],
)
@pytest.mark.parametrize("method", ["fixed", "sequential"])
def test_degenerate_arms_give_an_error_code_not_an_exception(
    arms: list[dict[str, Any]], error: str, method: str
) -> None:
    comparison = run({"arms": arms, "method": method})["comparisons"][0]
    assert comparison["error"] == error
    assert comparison["estimate"] is None
    assert comparison["ci"] is None
    assert comparison["p_value"] is None


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"alpha": 1.5}, "alpha", "less than 1"),
        ({"method": "bayesian"}, "method", "'fixed' or 'sequential'"),
        ({"arms": EXAMPLE["arms"][:1]}, "arms", "at least 2"),
        ({"weights": [1, -1]}, "weights", "positive"),
        (
            {"metric": "proportion"},
            "arms",
            "arms[0] ('control'): a proportion arm needs 'successes'",
        ),
        ({"alternative": "less", "method": "sequential", "alpha": 0.6}, "alpha", "alpha < 0.5"),
        (
            {"arms": [{"name": "c", "n": -1, "sum": 0, "sum_squares": 0}] * 2},
            "arms.0.n",
            "greater than or equal to 0",
        ),
        ({"colour": "blue"}, "colour", "Extra inputs"),
    ],
)
def test_validation_errors_name_the_field(change: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_request(json.dumps({**EXAMPLE, **change}))
    assert any(p.where == field and words in p.reason for p in caught.value.problems), (
        caught.value.problems
    )


def test_successes_above_n_and_duplicate_names_are_rejected() -> None:
    arms = [{"name": "c", "n": 10, "successes": 11}, {"name": "t", "n": 10, "successes": 1}]
    with pytest.raises(ValidationError, match=r"successes \(11\) cannot exceed n \(10\)"):
        AnalysisRequest.model_validate({"metric": "proportion", "arms": arms})
    twins = [{"name": "same", "n": 10, "successes": 1}] * 2
    with pytest.raises(ValidationError, match="unique"):
        AnalysisRequest.model_validate({"metric": "proportion", "arms": twins})


def test_not_json_is_an_invalid_input_error() -> None:
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        parse_request("{arms: ")


def test_a_negative_control_mean_keeps_the_sign_of_the_lift() -> None:
    # issue 14's case: the candidate (-8) is above the control (-10), so the lift is +0.2
    # (GrowthBook's current source divides by |control mean|); it used to answer -0.2
    out = run(
        {
            "metric": "mean",
            "difference": "relative",
            "method": "fixed",
            "arms": [
                {"name": "control", "n": 400, "sum": -4000, "sum_squares": 49975},
                {"name": "candidate", "n": 400, "sum": -3200, "sum_squares": 35575},
            ],
        }
    )
    comparison = out["comparisons"][0]
    assert comparison["estimate"] == pytest.approx(0.2, rel=1e-12)
    # the delta-method variance has m_a² and m_a⁴: the sign does not change it
    va, vb = (49975 - 4000**2 / 400) / 399, (35575 - 3200**2 / 400) / 399
    se = (vb / (100 * 400) + va * 64 / (10**4 * 400)) ** 0.5
    assert comparison["std_error"] == pytest.approx(se, rel=1e-9)
    assert comparison["ci"][0] > 0 and comparison["significant"] is True
