"""``POST /v1/events`` over HTTP on SQLite and PostgreSQL: good events kept, bad ones
refused with reasons, a re-sent batch counted as duplicates, the batch limit, roles."""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import TENANT_A, Keys, auth, caught_up, with_api
from fastapi.testclient import TestClient

from tuneloop.config import Settings
from tuneloop.store.models_registry import record_model_version

MAX_BATCH = 8


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    from api_helpers import JWT_SECRET

    return with_api(settings, jwt_secret=JWT_SECRET, max_batch_size=MAX_BATCH)


def _test_id(client: TestClient, keys: Keys) -> str:
    engine = client.app.state.resources.engine  # type: ignore[attr-defined]
    for version in ("1", "2"):  # an A/B test compares registered versions
        record_model_version(
            engine, TENANT_A, model_id="m", version=version, base_model="t", status="x"
        )
    request = {
        "baseline_model": {"model_id": "m", "version": "1"},
        "candidate_model": {"model_id": "m", "version": "2"},
    }
    response = client.post("/evaluation/create-ab-test", json=request, headers=auth(keys.operator))
    assert response.status_code == 201, response.text
    test_id: str = response.json()["ab_test_id"]
    return test_id


def _event(key: str, test_id: str | None, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "idempotency_key": key,
        "kind": "outcome",
        "unit_id": f"unit-{key}",
        "engagement": 0.07,
        "ts": "2025-01-02T09:30:00Z",
    }
    if test_id is not None:
        event |= {"experiment_key": test_id, "arm": "candidate"}
    return event | fields


def test_good_events_are_kept_bad_ones_refused_and_repeats_are_duplicates(
    client: TestClient, keys: Keys
) -> None:
    test_id = _test_id(client, keys)
    batch = [
        _event("e-1", test_id),
        _event("e-2", test_id, kind="exposure", engagement=None),
        _event("e-3", test_id, engagement=None),  # an outcome needs its engagement
        _event("e-4", "ab-test-nope"),
        _event("e-5", test_id, arm="treatment"),
        _event("e-6", None, surprise=True),
        "not an event",
        _event("e-8", None),
    ]
    response = client.post("/v1/events", json={"events": batch}, headers=auth(keys.operator))
    assert response.status_code == 202, response.text
    report = response.json()
    assert (report["received"], report["accepted"], report["duplicates"]) == (8, 3, 0)
    assert report["rejected"] == 5
    reasons = {error["index"]: error for error in report["errors"]}
    assert set(reasons) == {2, 3, 4, 5, 6}
    assert reasons[2]["field"] == "engagement"
    assert "no experiment" in reasons[3]["reason"]
    assert reasons[4]["field"] == "arm" and "treatment" in reasons[4]["reason"]
    assert all(error["reason"] for error in report["errors"])
    assert report["queued"] == 3
    caught_up(client.app)

    again = client.post("/v1/events", json={"events": batch}, headers=auth(keys.operator)).json()
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 3, 5)


def test_another_tenants_experiment_is_unknown_here(client: TestClient, keys: Keys) -> None:
    test_id = _test_id(client, keys)
    response = client.post(
        "/v1/events", json={"events": [_event("x-1", test_id)]}, headers=auth(keys.other_admin)
    )
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 0
    assert "no experiment" in response.json()["errors"][0]["reason"]


def test_limits_roles_and_bodies(client: TestClient, keys: Keys) -> None:
    too_many = [_event(f"b-{i}", None) for i in range(MAX_BATCH + 1)]
    response = client.post("/v1/events", json={"events": too_many}, headers=auth(keys.operator))
    assert response.status_code == 422
    assert f"at most {MAX_BATCH}" in response.json()["error"]["message"]
    viewer = client.post(
        "/v1/events", json={"events": [_event("v-1", None)]}, headers=auth(keys.viewer)
    )
    assert viewer.status_code == 403
    for bad in ({"events": "nope"}, {}, [1, 2]):
        answer = client.post("/v1/events", json=bad, headers=auth(keys.operator))
        assert answer.status_code == 422, bad
    assert client.post("/v1/events", json={"events": []}).status_code == 401


def test_without_a_consumer_events_wait_and_the_lag_is_shown_until_one_runs(
    api_settings: Settings,
) -> None:
    from fastapi.testclient import TestClient as Client

    from tuneloop.api.app import create_app
    from tuneloop.events.consumer import EventConsumer
    from tuneloop.store.auth_models import Role, create_api_key
    from tuneloop.store.events import count_events

    settings = api_settings.model_copy(
        update={"events": api_settings.events.model_copy(update={"consume_in_serve": False})}
    )
    with Client(create_app(settings)) as client:
        resources = client.app.state.resources  # type: ignore[attr-defined]
        assert resources.consumer is None
        key = create_api_key(resources.engine, "acme", role=Role.OPERATOR).plaintext
        keys = Keys(admin=key, operator=key, viewer=key, other_admin=key)
        test_id = _test_id(client, keys)
        batch = [_event(f"w-{i}", test_id) for i in range(3)]
        assert (
            client.post("/v1/events", json={"events": batch}, headers=auth(key)).json()["queued"]
            == 3
        )
        stream = client.get("/health").json()["event_stream"]
        assert stream["pending"] == 3 and stream["oldest_age_seconds"] is not None
        assert stream["consumer_in_process"] is False
        metrics = client.get(f"/evaluation/metrics/{test_id}", headers=auth(key)).json()
        assert metrics["event_stream"]["pending"] == 3
        assert count_events(resources.engine, "acme") == 0  # not written yet
        again = client.get(f"/evaluation/metrics/{test_id}", headers=auth(key)).json()
        assert again["metrics"] == metrics["metrics"]  # the cached report
        consumer = EventConsumer(
            resources.events, resources.engine, on_written=resources.reports.invalidate_tenant
        )
        assert consumer.drain().written == 3
        assert count_events(resources.engine, "acme") == 3
        fresh = client.get(f"/evaluation/metrics/{test_id}", headers=auth(key)).json()
        assert fresh["metrics"] != metrics["metrics"]  # the write invalidated the cached one
        assert client.get("/health").json()["event_stream"]["pending"] == 0
        assert "tuneloop_events_pending 0.0" in client.get("/metrics").text


def test_an_event_without_ts_is_stamped_with_the_servers_clock_and_a_given_ts_is_kept(
    client: TestClient, keys: Keys
) -> None:
    """The server's clock, not the client's: on a scaled clock (``worker.clock_speed``) the
    experiment and rollout windows are in that clock, so a client leaves ``ts`` out."""
    from datetime import UTC, datetime

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from tuneloop.domain.clock import ManualClock
    from tuneloop.store.experiment_models import OutcomeEvent

    resources = client.app.state.resources  # type: ignore[attr-defined]
    server_now = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    resources.container.clock = ManualClock(server_now)
    stamped = _event("no-ts", None)
    del stamped["ts"]
    batch = [stamped, _event("null-ts", None, ts=None), _event("given-ts", None)]
    response = client.post("/v1/events", json={"events": batch}, headers=auth(keys.operator))
    assert response.json()["accepted"] == 3, response.text
    caught_up(client.app)
    with Session(resources.engine) as session:
        rows = session.execute(
            select(OutcomeEvent.idempotency_key, OutcomeEvent.ts).where(
                OutcomeEvent.tenant_id == TENANT_A
            )
        ).all()
    found = {key: ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts for key, ts in rows}
    assert found == {
        "no-ts": server_now,
        "null-ts": server_now,
        "given-ts": datetime(2025, 1, 2, 9, 30, tzinfo=UTC),
    }
