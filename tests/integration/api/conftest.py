"""API fixtures: a started app over the parametrized database, keys per role and tenant."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import JWT_SECRET, TENANT_A, TENANT_B, Keys, with_api
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tuneloop.api.app import create_app
from tuneloop.config import Settings
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.tracking.connection import MLFLOW_ENV_DEFAULTS


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    """Settings on the parametrized database (SQLite and PostgreSQL), JWTs accepted."""
    return with_api(settings, jwt_secret=JWT_SECRET)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """SQLite only, for behaviour that does not depend on the database."""
    url = f"sqlite:///{tmp_path / 'workspace' / 'tuneloop.db'}"
    return Settings(
        workspace=tmp_path / "workspace", database={"url": url}, api={"jwt_secret": JWT_SECRET}
    )


@pytest.fixture
def app(api_settings: Settings) -> FastAPI:
    return create_app(api_settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """The app, started (lifespan run: migrated, connected) and stopped after the test."""
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def db(client: TestClient) -> Engine:
    """The started app's engine (the same pool the app uses)."""
    engine: Engine = client.app.state.resources.engine  # type: ignore[attr-defined]
    return engine


@pytest.fixture
def keys(db: Engine) -> Keys:
    return Keys(
        admin=create_api_key(db, TENANT_A, role=Role.ADMIN, name="a-admin").plaintext,
        operator=create_api_key(db, TENANT_A, role=Role.OPERATOR).plaintext,
        viewer=create_api_key(db, TENANT_A, role=Role.VIEWER).plaintext,
        other_admin=create_api_key(db, TENANT_B, role=Role.ADMIN).plaintext,
    )


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("TUNELOOP_TEST_REDIS_URL")
    if not url:
        if os.environ.get("TUNELOOP_REQUIRE_SERVICES") == "1":
            pytest.fail("TUNELOOP_REQUIRE_SERVICES=1 but TUNELOOP_TEST_REDIS_URL is not set")
        pytest.skip("Redis tests need TUNELOOP_TEST_REDIS_URL; set it to run them (CI does)")
    return url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix private to this test; its keys are deleted afterwards."""
    import redis

    prefix = f"tuneloop-test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def mlflow_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """MLflow's own environment defaults, set by the tracker, removed again afterwards."""
    for name in MLFLOW_ENV_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    yield
    for name in MLFLOW_ENV_DEFAULTS:
        os.environ.pop(name, None)
