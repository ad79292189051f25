"""``tuneloop deploy``, ``rollout tick``, ``deployments list|show`` and ``rollback`` end to end."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rollout_world import TENANT, World
from typer.testing import CliRunner

from tuneloop.cli.main import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def invoke_json(*args: str) -> Any:
    code, out = invoke(*args, "--json")
    assert code == 0, out
    return json.loads(out)


def test_deploy_tick_show_list_and_rollback(world: World) -> None:
    model = f"{world.candidate.model_id}@{world.candidate.version}"
    deployed = invoke_json("deploy", model, "--ab-test", world.ab_test_id, "--tenant", TENANT)
    assert deployed["status"] == "rolling_out"
    assert deployed["current_traffic"] == 0.1
    assert deployed["deployment_strategy"] == "gradual_rollout"
    assert set(deployed["rollback_plan"]) == {
        "previous_model",
        "rollback_time_seconds",
        "health_check_endpoints",
    }
    assert deployed["monitoring"]["rollback_triggers"] == [
        "engagement_rate_drop_15_percent",
        "error_rate_above_5_percent",
        "response_time_above_2000ms",
    ]
    # What is true: the dashboard's page of it; alert loading is unknown to the server.
    assert deployed["monitoring"]["deployment_dashboard"] == (
        f"/ui/deployments/{deployed['deployment_id']}"
    )
    assert deployed["monitoring"]["alerts_configured"] is False
    plan = deployed["plan"]  # 10%, 20% ... 90% then complete, one interval apart
    assert [step["traffic"] for step in plan] == pytest.approx([i / 10 for i in range(1, 11)])
    assert plan[0]["earliest_start"] == deployed["step_started_at"]
    assert plan[1]["earliest_start"] == plan[0]["earliest_advance"]
    assert any("100 units" in why for why in plan[0]["waits_for"])
    ticked = invoke_json("rollout", "tick")
    assert [t["action"] for t in ticked] == ["hold"]
    listed = invoke_json("deployments", "list", "--tenant", TENANT)
    assert [d["deployment_id"] for d in listed] == [deployed["deployment_id"]]
    code, out = invoke("deployments", "show", deployed["deployment_id"], "--tenant", TENANT)
    assert code == 0 and "rolling_out" in out
    assert "plan (earliest times" in out and "step 2 at 20%" in out
    assert "stalled if still inconclusive" in out  # rollout.stall_timeout_hours (72 h)
    back = invoke_json("rollback", deployed["deployment_id"], "--tenant", TENANT, "--reason", "x")
    assert (back["status"], back["current_traffic"], back["reason"]) == ("rolled_back", 0.0, "x")
    assert [e["kind"] for e in back["events"]][-2:] == ["rollback", "rolled_back"]
    code, out = invoke("deploy", model, "--ab-test", "ab-test-nope", "--tenant", TENANT)
    assert code == 5 and "safety checks" in out
