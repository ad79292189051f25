"""``/posts`` over HTTP on SQLite and PostgreSQL: per-item errors, idempotency, batch limit."""

from __future__ import annotations

from api_helpers import Keys, auth, post, with_api
from fastapi.testclient import TestClient

from tuneloop.api.app import create_app
from tuneloop.config import Settings


def test_good_items_are_kept_and_bad_ones_reported_with_loc(client: TestClient, keys: Keys) -> None:
    batch = [
        post("p1"),
        post("p2", engagement_rate=1.5),
        "not an object",
        post("p3", ts="yesterday"),
    ]
    response = client.post("/posts", json={"posts": batch}, headers=auth(keys.operator))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == ["p1"]
    assert body["accepted_count"] == 1
    assert body["rejected_count"] == 3
    rejected = {item["index"]: item for item in body["rejected"]}
    assert rejected[1]["id"] == "p2"
    assert rejected[1]["errors"][0]["loc"] == ["body", "posts", 1, "engagement_rate"]
    assert rejected[2]["id"] is None
    assert rejected[2]["errors"][0]["loc"] == ["body", "posts", 2]
    assert rejected[3]["errors"][0]["loc"] == ["body", "posts", 3, "ts"]
    count = client.get("/posts/count", headers=auth(keys.viewer))
    assert count.status_code == 200
    assert count.json() == {"count": 1}


def test_posting_again_updates_instead_of_duplicating(client: TestClient, keys: Keys) -> None:
    for rate in (0.05, 0.09):
        response = client.post(
            "/posts",
            json={"posts": [post("p1", engagement_rate=rate), post("p2")]},
            headers=auth(keys.admin),
        )
        assert response.json()["accepted"] == ["p1", "p2"]
    assert client.get("/posts/count", headers=auth(keys.admin)).json() == {"count": 2}


def test_counts_are_per_tenant(client: TestClient, keys: Keys) -> None:
    client.post("/posts", json={"posts": [post("a1"), post("a2")]}, headers=auth(keys.operator))
    client.post("/posts", json={"posts": [post("a1")]}, headers=auth(keys.other_admin))
    assert client.get("/posts/count", headers=auth(keys.viewer)).json() == {"count": 2}
    assert client.get("/posts/count", headers=auth(keys.other_admin)).json() == {"count": 1}


def test_a_batch_over_the_limit_is_a_422_that_says_the_limit(api_settings: Settings) -> None:
    app = create_app(with_api(api_settings, max_batch_size=3))
    with TestClient(app) as client:
        from tuneloop.store.auth_models import Role, create_api_key

        key = create_api_key(app.state.resources.engine, "acme", role=Role.OPERATOR).plaintext
        response = client.post(
            "/posts", json={"posts": [post(f"p{i}") for i in range(4)]}, headers=auth(key)
        )
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["type"] == "invalid_input"
        assert "at most 3" in error["message"]
        assert error["details"]["problems"][0]["where"] == "body.posts"
        assert client.get("/posts/count", headers=auth(key)).json() == {"count": 0}


def test_a_malformed_body_is_a_422_with_loc(client: TestClient, keys: Keys) -> None:
    response = client.post("/posts", json={"items": []}, headers=auth(keys.operator))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "invalid_input"
    assert error["details"]["errors"][0]["loc"] == ["body", "posts"]
    assert "body.posts: Field required" in error["message"]
