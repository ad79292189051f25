"""Shared fixtures: isolated settings, and a database on SQLite and (when configured) PostgreSQL.

PostgreSQL tests run when ``TUNELOOP_TEST_DATABASE_URL`` is set (CI sets it); each test gets
a fresh schema, dropped afterwards. Without the variable they are skipped with a reason that
says so; with ``TUNELOOP_REQUIRE_SERVICES=1`` an unreachable server fails the run instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from tuneloop.config import STANDARD_NAMES, Settings, get_settings
from tuneloop.store.db import normalize_url
from tuneloop.wiring import engine_for, release_engine

PG_URL = os.environ.get("TUNELOOP_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TUNELOOP_TEST_REDIS_URL")
REQUIRE_SERVICES = os.environ.get("TUNELOOP_REQUIRE_SERVICES") == "1"


def _unavailable(what: str, variable: str) -> None:
    message = f"{what} tests need {variable}; set it to run them (CI does)"
    if REQUIRE_SERVICES:
        pytest.fail(f"TUNELOOP_REQUIRE_SERVICES=1 but {message}")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test reads the developer's own configuration, workspace or tuneloop.toml."""
    for name in list(os.environ):
        if name.startswith("TUNELOOP_") and not name.startswith(
            ("TUNELOOP_TEST_", "TUNELOOP_REQUIRE")
        ):
            monkeypatch.delenv(name)
    for name in STANDARD_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUNELOOP_WORKSPACE", str(tmp_path / "workspace"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections land in a fresh, private schema."""
    if not PG_URL:
        _unavailable("PostgreSQL", "TUNELOOP_TEST_DATABASE_URL")
    base = normalize_url(PG_URL)  # type: ignore[arg-type]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # server down: fail loudly in CI, skip locally
        admin.dispose()
        if REQUIRE_SERVICES:
            pytest.fail(f"PostgreSQL at TUNELOOP_TEST_DATABASE_URL is unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'workspace' / 'tuneloop.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def settings(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Settings on the parametrized database; also exported to the env for CLI runs."""
    monkeypatch.setenv("TUNELOOP_DATABASE__URL", database_url)
    get_settings.cache_clear()
    configured = Settings(workspace=tmp_path / "workspace", database={"url": database_url})
    yield configured
    release_engine(configured)  # whatever opened it: the test, the CLI, the app


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = engine_for(settings)
    yield engine
    release_engine(settings)
