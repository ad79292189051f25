"""Engines and sessions: SQLite pragmas on connect, PostgreSQL pool bounds and timeouts.

The pool keeps every connection it opens (up to ``pool_max``; no overflow connections that
are closed again on return: under load they were opened and closed per request, a new
PostgreSQL backend or SQLite pragmas each time). A connection is pinged before use only
when it sat idle longer than ``IDLE_PING_SECONDS``: a ping on every checkout (SQLAlchemy's
``pool_pre_ping``) was one more round trip per request (``docs/decisions/0023``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Select, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
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
        return _sqlite_engine(url, parsed.database, settings)
    kwargs: dict[str, Any] = {
        "pool_size": max(settings.pool_max, settings.pool_min),
        "max_overflow": 0,
        "pool_recycle": settings.pool_recycle_seconds,
        "json_deserializer": json_loads,
    }
    if parsed.get_backend_name() == "postgresql":
        # connect_args replaces the URL's own libpq "options", so keep those too.
        options = str(parsed.query.get("options", ""))
        if settings.command_timeout_seconds > 0:
            options += f" -c statement_timeout={settings.command_timeout_seconds * 1000}"
        if options.strip():
            kwargs["connect_args"] = {"options": options.strip()}
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine)
    return engine


IDLE_PING_SECONDS = 10.0


def json_loads(text: str | bytes) -> Any:
    """JSON columns read with orjson (several times faster than the standard library);
    the standard library's ``NaN``/``Infinity``, which SQLite may hold, still read."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _ping_when_idle(engine: Engine) -> None:
    """Ping a connection that sat idle a while; a dead one is replaced, not handed out."""

    @event.listens_for(engine.pool, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < IDLE_PING_SECONDS:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_connection.rollback()
        except Exception as error:  # the pool retries with a fresh connection
            raise DisconnectionError(str(error)) from error


def _sqlite_engine(url: str, database: str | None, settings: DatabaseSettings) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    pool: dict[str, Any] = {}
    if database and database != ":memory:":
        # Connections kept, not opened (pragmas and all) and closed per request under load.
        pool = {"pool_size": max(settings.pool_max, settings.pool_min), "max_overflow": 0}
    engine = create_engine(url, connect_args={"timeout": 30}, json_deserializer=json_loads, **pool)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def one_statement(connection: Connection) -> Connection:
    """``connection`` for a read made of a single statement, which is a transaction of its
    own: on PostgreSQL without the BEGIN and COMMIT round trips around it. SQLite's driver
    already sends no BEGIN before a SELECT (and switching its mode costs more than it saves).
    The pool resets the connection's mode when it is returned."""
    if connection.dialect.name == "postgresql":
        return connection.execution_options(isolation_level="AUTOCOMMIT")
    return connection


def read_page(engine: Engine, page: Select[Any], count: Select[Any]) -> tuple[Sequence[Any], int]:
    """The ORM rows of ``page`` and the total ``count`` says, in one session: one pool
    checkout and one transaction, so the total matches the page (the list endpoints)."""
    with Session(engine, expire_on_commit=False) as session:
        return session.scalars(page).all(), int(session.scalar(count) or 0)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits when the block ends cleanly and rolls back otherwise."""
    with factory() as session, session.begin():
        yield session
