"""``tuneloop experiments`` and ``simulate-traffic`` end to end through the Typer app."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from tuneloop.cli.main import app
from tuneloop.config import Settings, get_settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def provider_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """gpt-4o-mini and the ft: model are a provider's: reachable once OPENAI_API_KEY is set."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    get_settings.cache_clear()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def invoke_json(*args: str) -> Any:
    code, out = invoke(*args, "--json")
    assert code == 0, out
    return json.loads(out)


def create(*extra: str) -> dict[str, Any]:
    return invoke_json(
        "experiments",
        "create",
        "--tenant",
        "acme",
        "--baseline",
        "gpt-4o-mini@1",
        "--candidate",
        "ft:gpt-4o-mini:acme::7@2",
        *extra,
    )


def test_create_list_show_stop(settings: Settings) -> None:
    created = create("--split", "0.2", "--duration-hours", "72")
    key = created["ab_test_id"]
    assert key.startswith("ab-test-")
    assert key.endswith("-001")
    assert created["status"] == "running"
    assert created["traffic_allocation"] == {"baseline": 0.8, "candidate": 0.2}
    assert created["candidate_model"] == {"model_id": "ft:gpt-4o-mini:acme::7", "version": "2"}
    code, out = invoke("experiments", "list", "--tenant", "acme")
    assert code == 0, out
    assert key in out
    assert "running" in out
    code, out = invoke("experiments", "show", key, "--tenant", "acme")
    assert code == 0, out
    assert "ft:gpt-4o-mini:acme::7" in out
    assert "80.00%" in out
    assert invoke_json("experiments", "stop", key, "--tenant", "acme")["status"] == "stopped"
    code, out = invoke("experiments", "stop", key, "--tenant", "acme")
    assert code == 5
    assert "cannot become stopped" in out
    code, out = invoke("experiments", "show", key, "--tenant", "globex")
    assert code == 4
    assert "not found" in out


def test_multi_arm_and_draft(settings: Settings) -> None:
    created = create("--candidate", "other@1", "--weights", "0.5,0.25,0.25", "--draft")
    assert created["status"] == "draft"
    assert [arm["name"] for arm in created["arms"]] == ["baseline", "candidate-1", "candidate-2"]
    code, out = invoke("experiments", "start", created["ab_test_id"], "--tenant", "acme")
    assert code == 0, out
    assert "running" in out
    code, out = invoke(
        "experiments", "create", "--baseline", "a", "--candidate", "b", "--weights", "0.5,0.6"
    )
    assert code == 2
    assert "add up to 1" in out


def test_simulated_lift_is_found_by_analyze(settings: Settings) -> None:
    key = create("--split", "0.5")["ab_test_id"]
    ingest = invoke_json(
        "simulate-traffic",
        key,
        "--tenant",
        "acme",
        "--units",
        "3000",
        "--lift",
        "0.25",
        "--base-rate",
        "0.05",
        "--noise",
        "0.5",
        "--cost-change",
        "-0.2",
        "--seed",
        "3",
    )
    assert ingest["accepted"] == ingest["received"] > 8000
    assert ingest["rejected"] == 0
    again = invoke_json(
        "simulate-traffic",
        key,
        "--tenant",
        "acme",
        "--units",
        "3000",
        "--lift",
        "0.25",
        "--cost-change",
        "-0.2",
        "--seed",
        "3",
    )
    assert (again["accepted"], again["duplicates"]) == (0, ingest["received"])

    report = invoke_json("experiments", "analyze", key, "--tenant", "acme")
    comparison = report["analyses"]["engagement"]["comparisons"][0]
    assert comparison["estimate"] == pytest.approx(0.25, abs=0.06)
    assert comparison["ci"][0] < 0.25 < comparison["ci"][1]
    assert report["performance_comparison"]["engagement_lift"] == pytest.approx(0.25, abs=0.06)
    assert report["srm"]["passed"] is True
    assert report["recommendation"] == "promote", report["reasons"]
    assert (
        report["metrics"]["baseline"]["sample_size"] + report["metrics"]["candidate"]["sample_size"]
        == 3000
    )

    code, out = invoke("experiments", "analyze", key, "--tenant", "acme", "--record")
    assert code == 0, out
    for text in (
        "engagement",
        "cost_per_token",
        "SRM",
        "recommendation: promote",
        "recorded: experiment is now decided",
    ):
        assert text in out
    assert invoke_json("experiments", "show", key, "--tenant", "acme")["decision"] == "promote"


def test_analyze_without_traffic_says_continue(settings: Settings) -> None:
    key = create()["ab_test_id"]
    code, out = invoke("experiments", "analyze", key, "--tenant", "acme", "--record")
    assert code == 0, out
    assert "recommendation: continue" in out
    assert "not recorded" in out
    assert "Traceback" not in out


def test_create_chooses_the_statistics_engine_and_correction(settings: Settings) -> None:
    created = create(
        "--engine", "bayesian", "--correction", "holm-bonferroni", "--max-risk", "0.02"
    )
    criteria = created["success_criteria"]
    assert (criteria["stats_engine"], criteria["correction"], criteria["max_risk"]) == (
        "bayesian",
        "holm-bonferroni",
        0.02,
    )
    code, out = invoke(
        "experiments", "create", "--baseline", "gpt-4o-mini", "--candidate", "ft:x",
        "--engine", "bayes", "--tenant", "acme",
    )  # fmt: skip
    assert code == 2, out
    assert "--engine must be one of frequentist, bayesian" in out


def test_models_that_do_not_exist_are_refused(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    get_settings.cache_clear()
    for candidate, says in (("nosuchmodel", "no model 'nosuchmodel'"), ("x@3", "no model 'x'")):
        code, out = invoke(
            "experiments", "create", "--tenant", "acme", "--baseline", "nosuchmodel@1",
            "--candidate", candidate,
        )  # fmt: skip
        assert code != 0 and says.split("'")[0] in out, out
    code, out = invoke("experiments", "list", "--tenant", "acme", "--json")
    assert code == 0 and json.loads(out) == []
