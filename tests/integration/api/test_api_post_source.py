"""Every post keeps the model version that wrote it: through the proxy's generation id, a
MODEL@VERSION label or explicit fields; shown by ``GET /posts`` (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from api_helpers import Keys, auth, post
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tuneloop.events.ingest import ingest_events

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _generation(engine: Engine, generation_id: str, label: str) -> None:
    """What the proxy records for one answered call (``serving.proxy.generation_events``)."""
    report = ingest_events(
        engine,
        "acme",
        [
            {
                "idempotency_key": f"generation:{generation_id}",
                "kind": "generation",
                "unit_id": "user-7",
                "model_id": label,
                "generation_id": generation_id,
                "tokens": 120,
                "ts": NOW,
            }
        ],
        now=NOW,
    )
    assert report.accepted == 1, report.problems


def test_posts_keep_the_version_that_wrote_them(client: TestClient, keys: Keys, db: Engine) -> None:
    _generation(db, "gen-abc", "tuneloop-acme@4")
    batch = [
        post("from-proxy", generation_id="gen-abc"),
        post("labelled", model_id="tuneloop-acme@2"),
        post("explicit", source_model="other", source_version="9"),
        post("by-hand"),
        post("unknown-generation", generation_id="gen-nope"),
    ]
    response = client.post("/posts", json={"posts": batch}, headers=auth(keys.operator))
    assert response.json()["accepted_count"] == 5, response.text
    listed = client.get("/posts", params={"limit": 10}, headers=auth(keys.viewer))
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] == 5
    sources = {p["id"]: (p["source_model"], p["source_version"]) for p in body["items"]}
    assert sources == {
        "from-proxy": ("tuneloop-acme", "4"),
        "labelled": ("tuneloop-acme", "2"),
        "explicit": ("other", "9"),
        "by-hand": (None, None),
        "unknown-generation": (None, None),
    }
    proxied = next(p for p in body["items"] if p["id"] == "from-proxy")
    assert proxied["generation_id"] == "gen-abc" and proxied["model_id"] == "tuneloop-acme@4"


def test_a_later_import_without_a_reference_keeps_the_known_origin(
    client: TestClient, keys: Keys
) -> None:
    first = post("p1", model_id="m@3", engagement_rate=0.01)
    client.post("/posts", json={"posts": [first]}, headers=auth(keys.operator))
    again = post("p1", engagement_rate=0.2)  # engagement arrives later, no model named
    client.post("/posts", json={"posts": [again]}, headers=auth(keys.operator))
    (item,) = client.get("/posts", headers=auth(keys.viewer)).json()["items"]
    assert (item["source_model"], item["source_version"]) == ("m", "3")
    assert item["engagement_rate"] == 0.2
    other = client.get("/posts", headers=auth(keys.other_admin)).json()
    assert other["items"] == [] and other["total"] == 0
