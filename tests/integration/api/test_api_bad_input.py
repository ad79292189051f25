"""Bad input at the edge, on SQLite and PostgreSQL: a NUL character in any text field is a
422 (or a rejected item of a batch) naming the field — never a 500, never a lost batch — and
a boolean where a number is meant (or the reverse) is refused, not coerced."""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import Keys, auth, post
from fastapi.testclient import TestClient

NUL = "u\u0000x"


def _locs(response: Any) -> list[list[Any]]:
    return [error["loc"] for error in response.json()["error"]["details"]["errors"]]


@pytest.mark.parametrize("field", ["id", "hook", "body", "persona_id", "model_id"])
def test_a_post_with_a_nul_is_rejected_and_the_good_ones_kept(
    client: TestClient, keys: Keys, field: str
) -> None:
    batch = [post("p1"), post("p2", **{field: NUL}), post("p3")]
    response = client.post("/posts", json={"posts": batch}, headers=auth(keys.operator))
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(body["accepted"]) == ["p1", "p3"]
    [rejected] = body["rejected"]
    assert rejected["index"] == 1
    assert rejected["errors"][0]["loc"] == ["body", "posts", 1, field]
    assert "NUL" in rejected["errors"][0]["msg"]


@pytest.mark.parametrize("field", ["unit_id", "idempotency_key", "model_id", "post_id"])
def test_an_event_with_a_nul_is_rejected_and_the_good_ones_kept(
    client: TestClient, keys: Keys, field: str
) -> None:
    def event(n: int, **more: Any) -> dict[str, Any]:
        return {
            "idempotency_key": f"k-{n}",
            "kind": "generation",
            "unit_id": f"u-{n}",
            "ts": "2026-01-02T10:00:00Z",
        } | more

    batch = [event(1), event(2, **{field: NUL}), event(3)]
    response = client.post("/v1/events", json={"events": batch}, headers=auth(keys.operator))
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["accepted"], report["rejected"]) == (2, 1)
    [error] = report["errors"]
    assert (error["index"], error["field"]) == (1, field)
    assert "NUL" in error["reason"]


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/keys", {"role": "viewer", "name": NUL}, ["body", "name"]),
        ("/v1/route", {"unit_id": NUL}, ["body", "unit_id"]),
        (
            "/v1/chat/completions",
            {"model": NUL, "messages": [{"role": "user", "content": "hi"}]},
            ["body", "model"],
        ),
        (
            "/v1/chat/completions",
            {"model": "auto", "user": NUL, "messages": [{"role": "user", "content": "hi"}]},
            ["body", "user"],
        ),
    ],
)
def test_a_nul_in_a_text_field_is_a_422_naming_it(
    client: TestClient, keys: Keys, path: str, body: dict[str, Any], loc: list[str]
) -> None:
    response = client.post(path, json=body, headers=auth(keys.admin))
    assert response.status_code == 422, response.text
    assert loc in _locs(response)
    assert "NUL" in response.text


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/fine-tuning/start", {"force_run": 0}, ["body", "force_run"]),
        (
            "/evaluation/create-ab-test",
            {
                "baseline_model": {"model_id": "m", "version": "1"},
                "candidate_model": {"model_id": "m", "version": "2"},
                "success_criteria": {"min_cost_efficiency_gain": False},
            },
            ["body", "success_criteria", "min_cost_efficiency_gain"],
        ),
        (
            "/v1/chat/completions",
            {"model": "auto", "seed": False, "messages": [{"role": "user", "content": "hi"}]},
            ["body", "seed"],
        ),
        (
            "/evaluation/create-ab-test",
            {
                "baseline_model": {"model_id": "m"},
                "candidate_model": {"model_id": "m", "version": "2"},
                "traffic_split": True,
            },
            ["body", "traffic_split"],
        ),
    ],
)
def test_a_boolean_is_not_a_number_nor_a_number_a_boolean(
    client: TestClient, keys: Keys, path: str, body: dict[str, Any], loc: list[str]
) -> None:
    response = client.post(path, json=body, headers=auth(keys.admin))
    assert response.status_code == 422, response.text
    assert loc in _locs(response)
