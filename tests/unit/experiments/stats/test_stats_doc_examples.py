"""The worked examples of docs/statistics.md answer the numbers the page quotes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tuneloop.experiments.stats.analysis import analyze, parse_request

EXAMPLES = Path(__file__).parents[4] / "docs" / "examples" / "stats"


def first(name: str) -> dict[str, Any]:
    result = analyze(parse_request((EXAMPLES / f"{name}.json").read_text()))
    comparison: dict[str, Any] = json.loads(result.model_dump_json())["comparisons"][0]
    return comparison


@pytest.mark.parametrize(
    ("name", "field", "quoted"),
    [
        ("negative-control", "estimate", 0.2),
        ("negative-control", "std_error", 0.032016),
        ("ratio", "estimate", 0.135802),
        ("ratio", "std_error", 0.033824),
        ("cuped", "estimate", 0.038662),
        ("cuped", "std_error", 0.028807),
        ("cuped-without-pre-period", "std_error", 0.037867),
        ("bayesian", "estimate", 0.236859),
        ("bayesian", "chance_to_win", 0.9999986),
        ("holm-bonferroni", "adjusted_p_value", 0.13606),
    ],
)
def test_quoted_numbers(name: str, field: str, quoted: float) -> None:
    assert first(name)[field] == pytest.approx(quoted, abs=1e-5)


def test_quoted_cuped_block() -> None:
    cuped = first("cuped")["cuped"]
    assert cuped["theta"] == pytest.approx(0.680259, abs=1e-6)
    assert cuped["variance_reduction"] == pytest.approx(0.421299, abs=1e-6)
