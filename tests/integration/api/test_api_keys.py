"""``/keys`` and ``tuneloop keys`` on SQLite and PostgreSQL: shown once, hashed, revocable."""

from __future__ import annotations

import pytest
from api_helpers import TENANT_A, Keys, auth, with_api
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tuneloop.api.app import create_app
from tuneloop.cli.main import app as cli
from tuneloop.config import Settings
from tuneloop.errors import InvalidStateError
from tuneloop.store.auth_models import ApiKey, Role, create_api_key, hash_key, revoke_api_key


def test_a_created_key_works_once_shown_and_is_stored_hashed(
    client: TestClient, db: Engine, keys: Keys
) -> None:
    response = client.post(
        "/keys", json={"role": "viewer", "name": "dashboard"}, headers=auth(keys.admin)
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["tenant_id"] == TENANT_A
    assert created["role"] == "viewer"
    assert created["key"].startswith(f"tl_{created['id']}_")
    with Session(db) as session:
        stored = session.scalars(select(ApiKey).where(ApiKey.id == created["id"])).one()
    assert stored.key_hash == hash_key(created["key"])
    assert created["key"] not in stored.key_hash
    assert client.get("/posts/count", headers={"X-API-Key": created["key"]}).status_code == 200
    listing = client.get("/keys", headers=auth(keys.admin)).json()["items"]
    assert created["id"] in {item["id"] for item in listing}
    assert all("key" not in item and "key_hash" not in item for item in listing)


def test_a_revoked_key_is_refused(client: TestClient, keys: Keys) -> None:
    created = client.post("/keys", json={"role": "operator"}, headers=auth(keys.admin)).json()
    revoked = client.delete(f"/keys/{created['id']}", headers=auth(keys.admin))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    # Without Redis, other worker processes trust their cached key a while longer: said so.
    assert revoked.json()["other_workers_may_accept_for_seconds"] == 10.0
    refused = client.get("/posts/count", headers=auth(created["key"]))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert client.delete(f"/keys/{created['id']}", headers=auth(keys.admin)).status_code == 200
    listed = {i["id"]: i for i in client.get("/keys", headers=auth(keys.admin)).json()["items"]}
    assert listed[created["id"]]["revoked_at"] is not None


def test_keys_of_another_tenant_are_invisible(client: TestClient, keys: Keys) -> None:
    created = client.post("/keys", json={"role": "viewer"}, headers=auth(keys.admin)).json()
    assert (
        client.delete(f"/keys/{created['id']}", headers=auth(keys.other_admin)).status_code == 404
    )
    theirs = client.get("/keys", headers=auth(keys.other_admin)).json()["items"]
    assert created["id"] not in {item["id"] for item in theirs}
    assert client.get("/posts/count", headers=auth(created["key"])).status_code == 200


def test_an_unknown_role_is_a_422(client: TestClient, keys: Keys) -> None:
    response = client.post("/keys", json={"role": "root"}, headers=auth(keys.admin))
    assert response.status_code == 422
    assert response.json()["error"]["details"]["errors"][0]["loc"] == ["body", "role"]


def test_cli_creates_lists_and_revokes(settings: Settings, api_settings: Settings) -> None:
    # The CLI revokes from another process: with the key cache off the server sees it at
    # once (with it on, within api.key_cache_seconds; see tests/unit/api/test_key_cache.py).
    app_settings = with_api(api_settings, key_cache_seconds=0)
    with TestClient(create_app(app_settings), raise_server_exceptions=False) as client:
        _create_list_revoke(client)


def _create_list_revoke(client: TestClient) -> None:
    runner = CliRunner()
    created = runner.invoke(
        cli, ["keys", "create", "--tenant", "cli-co", "--role", "operator", "--name", "ci"]
    )
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    key_id = key.split("_")[1]
    assert client.get("/posts/count", headers=auth(key)).status_code == 200
    listed = runner.invoke(cli, ["keys", "list", "--tenant", "cli-co"])
    assert listed.exit_code == 0
    assert key_id in listed.output
    assert key not in listed.output
    assert runner.invoke(cli, ["keys", "revoke", key_id, "--tenant", "other"]).exit_code == 4
    revoked = runner.invoke(cli, ["keys", "revoke", key_id, "--tenant", "cli-co"])
    assert revoked.exit_code == 0, revoked.output
    assert client.get("/posts/count", headers=auth(key)).status_code == 401


def test_an_admin_key_cannot_revoke_itself_nor_the_last_admin_key(
    client: TestClient, keys: Keys
) -> None:
    listed = client.get("/keys", headers=auth(keys.admin)).json()["items"]
    own = next(item["id"] for item in listed if item["name"] == "a-admin")
    refused = client.delete(f"/keys/{own}", headers=auth(keys.admin))
    assert refused.status_code == 409 and "cannot revoke itself" in refused.text
    second = client.post("/keys", json={"role": "admin"}, headers=auth(keys.admin)).json()
    assert client.delete(f"/keys/{own}", headers=auth(second["key"])).status_code == 200
    # Now `second` is the last admin key: nobody may revoke it (here: through the CLI's path).
    with pytest.raises(InvalidStateError, match="last active admin key"):
        revoke_api_key(client.app.state.resources.engine, TENANT_A, second["id"])  # type: ignore[attr-defined]
    assert client.get("/posts/count", headers=auth(second["key"])).status_code == 200


def test_options_names_every_method_of_the_path(client: TestClient) -> None:
    answer = client.options("/keys")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert client.options("/keys/0123456789ab").headers["allow"] == "DELETE"


@pytest.mark.redis
def test_with_redis_a_revocation_holds_in_every_worker_at_once(
    sqlite_settings: Settings, redis_url: str
) -> None:
    settings = with_api(sqlite_settings, key_cache_seconds=60)
    settings = settings.model_copy(
        update={"redis": settings.redis.model_copy(update={"url": redis_url})}
    )
    with (
        TestClient(create_app(settings)) as one,
        TestClient(create_app(settings)) as other,
    ):
        engine = one.app.state.resources.engine  # type: ignore[attr-defined]
        admin = create_api_key(engine, TENANT_A, role=Role.ADMIN).plaintext
        victim = one.post("/keys", json={"role": "viewer"}, headers=auth(admin)).json()
        assert other.get("/posts/count", headers=auth(victim["key"])).status_code == 200  # cached
        revoked = one.delete(f"/keys/{victim['id']}", headers=auth(admin))
        assert revoked.json()["other_workers_may_accept_for_seconds"] == 0.0
        assert other.get("/posts/count", headers=auth(victim["key"])).status_code == 401
