"""``/evaluation`` over HTTP on SQLite and PostgreSQL: create (running), events through
``/v1/events``, metrics with every documented field, status, pages, roles, tenants."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from api_helpers import TENANT_A, Keys, auth, caught_up
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tuneloop.store.models_registry import record_model_version, set_champion
from tuneloop.synthetic.traffic import TrafficSpec, generate_traffic

REQUEST: dict[str, Any] = {
    "baseline_model": {"model_id": "tuneloop-acme", "version": "1"},
    "candidate_model": {"model_id": "tuneloop-acme", "version": "2"},
    "traffic_split": 0.5,
    "duration_hours": 24,
    "success_criteria": {
        "min_engagement_lift": 0.15,
        "min_cost_efficiency_gain": 0.10,
        "significance_threshold": 0.05,
    },
}


@pytest.fixture(autouse=True)
def registered(db: Engine) -> None:
    """tuneloop-acme v1 (champion), v2 and v3 of tenant acme, as the pipeline registers them."""
    for version in ("1", "2", "3"):
        record_model_version(
            db, TENANT_A, model_id="tuneloop-acme", version=version, base_model="tiny", status="x"
        )
    set_champion(db, TENANT_A, "tuneloop-acme", "1")


def _create(client: TestClient, key: str, **changes: Any) -> dict[str, Any]:
    response = client.post("/evaluation/create-ab-test", json=REQUEST | changes, headers=auth(key))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _iso(value: datetime) -> str:
    return value.isoformat()


def _send_traffic(client: TestClient, key: str, ab_test_id: str) -> int:
    spec = TrafficSpec(ab_test_id, [("baseline", 0.5), ("candidate", 0.5)], units=400, lift=0.4)
    sent = 0
    for chunk in generate_traffic(spec):
        for start in range(0, len(chunk), 1000):
            batch = json.loads(json.dumps(chunk[start : start + 1000], default=_iso))
            response = client.post("/v1/events", json={"events": batch}, headers=auth(key))
            assert response.status_code == 202, response.text
            assert response.json()["rejected"] == 0, response.json()["errors"][:3]
            sent += len(batch)
    caught_up(client.app)
    return sent


def test_create_starts_running_with_the_documented_fields(client: TestClient, keys: Keys) -> None:
    created = _create(client, keys.operator, traffic_split=0.1)
    assert created["ab_test_id"].startswith("ab-test-")
    assert created["status"] == "running"
    assert created["start_time"] and created["estimated_end_time"]
    assert created["traffic_allocation"] == {"baseline": 0.9, "candidate": 0.1}
    test_id = created["ab_test_id"]
    assert created["monitoring_endpoints"] == {
        "metrics": f"/evaluation/metrics/{test_id}",
        "status": f"/evaluation/status/{test_id}",
    }
    status = client.get(created["monitoring_endpoints"]["status"], headers=auth(keys.viewer))
    assert status.status_code == 200, status.text
    assert status.json()["status"] == "running"
    assert status.json()["candidate_model"] == {"model_id": "tuneloop-acme", "version": "2"}


def test_metrics_after_traffic_have_every_documented_field(client: TestClient, keys: Keys) -> None:
    test_id = _create(client, keys.operator)["ab_test_id"]
    assert _send_traffic(client, keys.operator, test_id) > 400
    response = client.get(f"/evaluation/metrics/{test_id}", headers=auth(keys.viewer))
    assert response.status_code == 200, response.text
    metrics = response.json()
    assert {
        "ab_test_id",
        "status",
        "duration_hours",
        "metrics",
        "performance_comparison",
        "statistical_analysis",
        "recommendation",
    } <= set(metrics)
    assert metrics["ab_test_id"] == test_id
    assert metrics["status"] == "running"
    for arm in ("baseline", "candidate"):
        assert set(metrics["metrics"][arm]) >= {
            "engagement_rate",
            "cost_per_token",
            "response_time_ms",
            "quality_score",
            "sample_size",
        }
        assert metrics["metrics"][arm]["sample_size"] > 100
        assert metrics["metrics"][arm]["engagement_rate"] > 0
    assert set(metrics["performance_comparison"]) == {
        "engagement_lift",
        "cost_efficiency_gain",
        "quality_improvement",
        "latency_improvement",
    }
    assert metrics["performance_comparison"]["engagement_lift"] > 0
    analysis = metrics["statistical_analysis"]
    assert set(analysis) >= {"is_significant", "confidence_level", "p_value", "effect_size"}
    assert analysis["confidence_level"] == 0.95
    assert metrics["recommendation"] in ("promote", "reject", "continue")


def test_pages_are_newest_first_with_total(client: TestClient, keys: Keys) -> None:
    ids = []
    for old, new in (("1", "2"), ("1", "3"), ("2", "3")):  # one test per pair of models
        baseline = {"model_id": "tuneloop-acme", "version": old}
        model = {"model_id": "tuneloop-acme", "version": new}
        created = _create(client, keys.operator, baseline_model=baseline, candidate_model=model)
        ids.append(created["ab_test_id"])
    response = client.get(
        "/evaluation/ab-tests", params={"limit": 2, "offset": 0}, headers=auth(keys.viewer)
    )
    assert response.status_code == 200, response.text
    page = response.json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 0)
    assert [item["ab_test_id"] for item in page["items"]] == [ids[2], ids[1]]


def test_another_tenants_test_is_not_found(client: TestClient, keys: Keys) -> None:
    test_id = _create(client, keys.operator)["ab_test_id"]
    for path in (f"/evaluation/metrics/{test_id}", f"/evaluation/status/{test_id}"):
        response = client.get(path, headers=auth(keys.other_admin))
        assert response.status_code == 404, path
        assert response.json()["error"]["type"] == "not_found"
    missing = client.get("/evaluation/status/ab-test-20990101-001", headers=auth(keys.viewer))
    assert missing.status_code == 404
    listing = client.get("/evaluation/ab-tests", headers=auth(keys.other_admin)).json()
    assert (listing["total"], listing["items"]) == (0, [])


def test_a_viewer_cannot_create_and_bad_bodies_are_422(client: TestClient, keys: Keys) -> None:
    forbidden = client.post("/evaluation/create-ab-test", json=REQUEST, headers=auth(keys.viewer))
    assert forbidden.status_code == 403
    for bad in (
        REQUEST | {"traffic_split": 1.5},
        {k: v for k, v in REQUEST.items() if k != "candidate_model"},
        REQUEST | {"success_criteria": {"significance_threshold": 2}},
        REQUEST | {"duration_hours": 0},
    ):
        response = client.post("/evaluation/create-ab-test", json=bad, headers=auth(keys.operator))
        assert response.status_code == 422, bad
        assert response.json()["error"]["type"] == "invalid_input"
    unauthenticated = client.get("/evaluation/ab-tests")
    assert unauthenticated.status_code == 401


def test_a_bayesian_test_reports_chance_to_win_and_ratio_metrics(
    client: TestClient, keys: Keys
) -> None:
    criteria = REQUEST["success_criteria"] | {
        "stats_engine": "bayesian",
        "min_chance_to_win": 0.975,
        "correction": "holm-bonferroni",
    }
    created = _create(client, keys.operator, success_criteria=criteria)
    test_id = created["ab_test_id"]
    _send_traffic(client, keys.operator, test_id)
    metrics = client.get(f"/evaluation/metrics/{test_id}", headers=auth(keys.viewer)).json()
    analysis = metrics["statistical_analysis"]
    assert analysis["stats_engine"] == "bayesian"
    assert analysis["correction"] == "holm-bonferroni"
    assert analysis["p_value"] is None
    assert 0.5 < analysis["chance_to_win"] <= 1.0  # a +40 % lift
    assert analysis["cuped"] is None  # no unit has history before its exposure
    assert metrics["analyses"]["cost_per_token"]["metric"] == "ratio"
    assert "engagement_per_post" in metrics["analyses"]
    bad = REQUEST | {"success_criteria": criteria | {"stats_engine": "bayes"}}
    response = client.post("/evaluation/create-ab-test", json=bad, headers=auth(keys.operator))
    assert response.status_code == 422


def test_models_that_do_not_exist_are_refused_before_taking_traffic(
    client: TestClient, keys: Keys
) -> None:
    for candidate, says in (
        ({"model_id": "tuneloop-acme", "version": "99"}, "has no version 99"),
        ({"model_id": "nosuchmodel"}, "no model 'nosuchmodel'"),
    ):
        body = REQUEST | {"candidate_model": candidate}
        response = client.post("/evaluation/create-ab-test", json=body, headers=auth(keys.operator))
        assert response.status_code == 404, response.text
        assert says in response.json()["error"]["message"]
    listing = client.get("/evaluation/ab-tests", headers=auth(keys.viewer)).json()
    assert listing["total"] == 0  # nothing was created, nothing routes to them


def test_an_unversioned_baseline_is_the_champion_and_a_pair_is_tested_once(
    client: TestClient, keys: Keys
) -> None:
    created = _create(client, keys.operator, baseline_model={"model_id": "tuneloop-acme"})
    status = client.get(
        f"/evaluation/status/{created['ab_test_id']}", headers=auth(keys.viewer)
    ).json()
    assert status["baseline_model"]["version"] == "1"  # the champion, whatever its number
    again = client.post("/evaluation/create-ab-test", json=REQUEST, headers=auth(keys.operator))
    assert again.status_code == 409, again.text
    assert created["ab_test_id"] in again.json()["error"]["message"]
