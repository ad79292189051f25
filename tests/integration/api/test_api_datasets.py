"""``/datasets`` over HTTP on SQLite and PostgreSQL: pages, prefixes, tenant isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api_helpers import TENANT_A, TENANT_B, Keys, add_dataset, auth
from fastapi.testclient import TestClient
from sqlalchemy import Engine


def test_pages_are_newest_first_with_total(client: TestClient, db: Engine, keys: Keys) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    versions = [add_dataset(db, TENANT_A, created_at=start + timedelta(days=i)) for i in range(5)]
    add_dataset(db, TENANT_B)
    response = client.get("/datasets", params={"limit": 2, "offset": 1}, headers=auth(keys.viewer))
    assert response.status_code == 200, response.text
    page = response.json()
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
    assert [item["id"] for item in page["items"]] == [versions[3], versions[2]]
    assert "path" not in page["items"][0]  # server paths stay on the server


def test_one_version_by_hash_or_prefix(client: TestClient, db: Engine, keys: Keys) -> None:
    version = add_dataset(db, TENANT_A, "abcdef" + "0" * 58)
    for asked in (version, version[:8]):
        response = client.get(f"/datasets/{asked}", headers=auth(keys.viewer))
        assert response.status_code == 200, response.text
        assert response.json()["id"] == version
        assert response.json()["manifest"]["format"] == "openai-chat-jsonl"


def test_an_ambiguous_or_short_prefix_is_a_422(client: TestClient, db: Engine, keys: Keys) -> None:
    add_dataset(db, TENANT_A, "aaaaaa" + "1" * 58)
    add_dataset(db, TENANT_A, "aaaaaa" + "2" * 58)
    ambiguous = client.get("/datasets/aaaaaa", headers=auth(keys.viewer))
    assert ambiguous.status_code == 422
    assert "ambiguous" in ambiguous.json()["error"]["message"]
    short = client.get("/datasets/aaa", headers=auth(keys.viewer))
    assert short.status_code == 422
    assert short.json()["error"]["details"]["errors"][0]["loc"] == ["path", "dataset_id"]


def test_another_tenants_dataset_is_not_found(client: TestClient, db: Engine, keys: Keys) -> None:
    theirs = add_dataset(db, TENANT_A)
    for asked in (theirs, theirs[:10]):
        response = client.get(f"/datasets/{asked}", headers=auth(keys.other_admin))
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"
    listing = client.get("/datasets", headers=auth(keys.other_admin)).json()
    assert listing["total"] == 0
    assert listing["items"] == []
