"""``tuneloop stats analyze`` through the root CLI: JSON in, JSON out, exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tuneloop.cli.main import app

REQUEST = {
    "metric": "proportion",
    "method": "sequential",
    "arms": [
        {"name": "control", "n": 20000, "successes": 1000},
        {"name": "candidate", "n": 20100, "successes": 1250},
    ],
}


def test_analyze_reads_a_file_and_prints_the_result(tmp_path: Path) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(REQUEST))
    result = CliRunner().invoke(app, ["stats", "analyze", str(path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    comparison = out["comparisons"][0]
    assert comparison["arm"] == "candidate"
    assert comparison["estimate"] == pytest.approx((1250 / 20100) / (1000 / 20000) - 1)
    assert comparison["significant"] is True
    assert out["srm"]["passed"] is True


def test_analyze_reads_stdin_with_a_dash() -> None:
    result = CliRunner().invoke(app, ["stats", "analyze", "-"], input=json.dumps(REQUEST))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["method"] == "sequential"


def test_invalid_input_exits_2_and_names_the_field() -> None:
    bad = {**REQUEST, "alpha": 3}
    result = CliRunner().invoke(app, ["stats", "analyze", "-"], input=json.dumps(bad))
    assert result.exit_code == 2
    assert "alpha" in result.output
    assert "less than 1" in result.output


def test_not_json_and_a_missing_file_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["stats", "analyze", "-"], input="{").exit_code == 2
    missing = runner.invoke(app, ["stats", "analyze", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2
    assert "cannot read" in missing.output
