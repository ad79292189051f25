"""Engines and sessions: SQLite pragmas on connect, PostgreSQL pool bounds and timeouts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from tuneloop.config import DatabaseSettings
from tuneloop.errors import ConfigurationError


def normalize_url(url: str) -> str:
    """Map the standard ``postgresql://`` (and Heroku's ``postgres://``) to psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, settings: DatabaseSettings | None = None) -> Engine:
    settings = settings or DatabaseSettings()
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigurationError(f"database URL is not valid: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    kwargs: dict[str, Any] = {
        "pool_size": settings.pool_min,
        "max_overflow": max(settings.pool_max - settings.pool_min, 0),
        "pool_recycle": settings.pool_recycle_seconds,
        "pool_pre_ping": True,
    }
    if parsed.get_backend_name() == "postgresql":
        # connect_args replaces the URL's own libpq "options", so keep those too.
        options = str(parsed.query.get("options", ""))
        if settings.command_timeout_seconds > 0:
            options += f" -c statement_timeout={settings.command_timeout_seconds * 1000}"
        if options.strip():
            kwargs["connect_args"] = {"options": options.strip()}
    return create_engine(url, **kwargs)


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits when the block ends cleanly and rolls back otherwise."""
    with factory() as session, session.begin():
        yield session
