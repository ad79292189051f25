"""``/deployment`` over HTTP on SQLite and PostgreSQL: the refusal path, a real deploy of a
registered version an A/B test recommends (embedded MLflow), rollback, reads, roles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from api_helpers import TENANT_A, Keys, auth
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from registry_helpers import register_version
from tuneloop.app.simulation import simulate_traffic
from tuneloop.config import Settings
from tuneloop.experiments import service
from tuneloop.experiments.service import ModelRef, two_arms
from tuneloop.pipeline.promotion import promote_first_champion
from tuneloop.synthetic.traffic import TrafficSpec
from tuneloop.tracking import Tracker
from tuneloop.wiring import tracker_for

MODEL = "tuneloop-acme"


def _request(ab_test_id: str, version: str = "2", **changes: Any) -> dict[str, Any]:
    return {
        "model_version": {"model_id": MODEL, "version": version},
        "evaluation_result": {
            "ab_test_id": ab_test_id,
            "recommendation": "promote",
            "safety_checks_passed": True,
        },
        "deployment_strategy": "gradual_rollout",
        "rollout_config": {
            "initial_traffic": 0.1,
            "increment_interval_hours": 24,
            "increment_percentage": 0.1,
            "max_traffic": 1.0,
        },
    } | changes


def _register(engine: Engine, tracker: Tracker, folder: Path, run: str) -> str:
    return register_version(engine, tracker, folder, run, tenant=TENANT_A)


@pytest.fixture
def decided(
    mlflow_environment: None, db: Engine, api_settings: Settings, tmp_path: Path
) -> tuple[str, str]:
    """v1 is champion; v2 won an A/B test against it. Returns (ab_test_id, candidate version)."""
    tracker = tracker_for(api_settings)
    first = _register(db, tracker, tmp_path / "adapter-1", "p-001")
    second = _register(db, tracker, tmp_path / "adapter-2", "p-002")
    promote_first_champion(db, api_settings, TENANT_A, version=first)
    arms = two_arms(ModelRef(MODEL, first), ModelRef(MODEL, second), 0.5)
    row = service.create_experiment(db, TENANT_A, arms=arms, duration_hours=24)
    spec = TrafficSpec(row.key, (), units=3000, lift=0.4, cost_change=-0.3, seed=11)
    simulate_traffic(db, TENANT_A, row.key, spec=spec)
    return row.key, second


def test_deploy_rollback_and_reads(
    client: TestClient, keys: Keys, decided: tuple[str, str]
) -> None:
    ab_test_id, version = decided
    response = client.post(
        "/deployment/deploy", json=_request(ab_test_id, version), headers=auth(keys.operator)
    )
    assert response.status_code == 201, response.text
    deployed = response.json()
    deployment_id = deployed["deployment_id"]
    assert deployment_id.startswith("deploy-")
    assert deployed["status"] == "rolling_out"
    assert deployed["deployment_strategy"] == "gradual_rollout"
    assert deployed["current_traffic"] == 0.1
    plan = deployed["rollback_plan"]
    assert plan["previous_model"] == {"model_id": MODEL, "version": "1"}
    assert plan["rollback_time_seconds"] > 0 and plan["health_check_endpoints"]
    monitoring = deployed["monitoring"]
    assert set(monitoring) == {"deployment_dashboard", "alerts_configured", "rollback_triggers"}
    assert monitoring["rollback_triggers"][0] == "engagement_rate_drop_15_percent"

    status = client.get(f"/evaluation/status/{ab_test_id}", headers=auth(keys.viewer)).json()
    assert (status["status"], status["decision"]) == ("decided", "promote")
    second = client.post(
        "/deployment/deploy", json=_request(ab_test_id, version), headers=auth(keys.operator)
    )
    assert second.status_code == 409

    shown = client.get(f"/deployment/{deployment_id}", headers=auth(keys.viewer))
    assert shown.status_code == 200, shown.text
    assert [event["kind"] for event in shown.json()["events"]] == ["deployed"]
    steps = shown.json()["plan"]  # each step's earliest times and what it waits for
    assert [step["traffic"] for step in steps][:2] == [0.1, 0.2]
    assert steps[0]["earliest_advance"] == steps[1]["earliest_start"]
    assert any(why.startswith("stalled if still inconclusive") for why in steps[0]["waits_for"])
    assert monitoring["deployment_dashboard"] == f"/ui/deployments/{deployment_id}"
    assert client.get(monitoring["deployment_dashboard"]).status_code in (200, 303)
    assert monitoring["alerts_configured"] is False  # the server cannot know Prometheus loaded them
    assert (
        client.get(f"/deployment/{deployment_id}", headers=auth(keys.other_admin)).status_code
        == 404
    )
    page = client.get("/deployments", headers=auth(keys.viewer)).json()
    assert page["total"] == 1 and page["items"][0]["deployment_id"] == deployment_id

    forbidden = client.post(f"/deployment/rollback/{deployment_id}", headers=auth(keys.viewer))
    assert forbidden.status_code == 403
    other = client.post(f"/deployment/rollback/{deployment_id}", headers=auth(keys.other_admin))
    assert other.status_code == 404
    rolled = client.post(
        f"/deployment/rollback/{deployment_id}",
        json={"reason": "engagement looked off"},
        headers=auth(keys.operator),
    )
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["status"] in ("rolling_back", "rolled_back")
    assert rolled.json()["current_traffic"] == 0.0
    assert rolled.json()["reason"] == "engagement looked off"


def test_deploying_a_version_that_does_not_exist_is_404(client: TestClient, keys: Keys) -> None:
    response = client.post(
        "/deployment/deploy", json=_request("ab-test-20250102-001"), headers=auth(keys.operator)
    )
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["type"] == "not_found"
    assert "version" in error["message"] and "not found" in error["message"]
    assert client.get("/deployments", headers=auth(keys.viewer)).json()["total"] == 0


def test_bad_bodies_roles_and_unknown_ids(client: TestClient, keys: Keys) -> None:
    bad_config = _request("ab-1", rollout_config={"initial_traffic": 0.5, "max_traffic": 0.2})
    for bad in (
        _request("ab-1", deployment_strategy="yolo"),
        _request("ab-1", rollout_config={"initial_traffic": 2}),
        {"model_version": {"model_id": MODEL}},
        bad_config,  # each field valid, together not (the service says so)
    ):
        response = client.post("/deployment/deploy", json=bad, headers=auth(keys.operator))
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"]["type"] == "invalid_input"
    viewer = client.post("/deployment/deploy", json=_request("ab-1"), headers=auth(keys.viewer))
    assert viewer.status_code == 403
    missing = "deploy-20990101-001"
    assert client.get(f"/deployment/{missing}", headers=auth(keys.viewer)).status_code == 404
    rollback = client.post(f"/deployment/rollback/{missing}", headers=auth(keys.operator))
    assert rollback.status_code == 404
    page = client.get("/deployments", params={"limit": 5, "offset": 0}, headers=auth(keys.viewer))
    assert page.status_code == 200
    assert page.json() == {"items": [], "total": 0, "limit": 5, "offset": 0}
