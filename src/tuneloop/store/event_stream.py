"""The embedded event stream: the ``EventStream`` contract on an append-only app-database table.

No Redis needed. A consumer claims entries with one ``UPDATE ... RETURNING`` (on
PostgreSQL its sub-select skips rows locked by another consumer), which also counts the
delivery; acknowledging deletes the rows. An entry claimed longer ago than the idle time
(its consumer died) is claimed again by whoever reads next.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: one process's threads are still serialised
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, update

from tuneloop.domain.clock import Clock, SystemClock
from tuneloop.domain.event_stream import (
    Category,
    DeadLetter,
    Entry,
    Lag,
    decode_event,
    encode_event,
)
from tuneloop.store.base import Base
from tuneloop.store.db import make_engine
from tuneloop.store.event_stream_models import DeadLetterRow, StreamEntry

SOURCE = "db:event_stream"


def sqlite_stream_engine(app_engine: Engine) -> Engine:
    """An engine on the stream's own SQLite file next to the app database (NAME-events.db),
    its tables created; the caller disposes of it (``DatabaseEventStream.close``).

    SQLite has one writer per file: a stream inside the app database would make every
    append wait for the consumer's batch writes to the events table."""
    database = app_engine.url.database
    if not database or database == ":memory:":
        return app_engine
    path = Path(database)
    engine = make_engine(f"sqlite:///{path.with_name(f'{path.stem}-events{path.suffix}')}")
    tables = [Base.metadata.tables[name] for name in ("event_stream", "event_dead_letters")]
    Base.metadata.create_all(engine, tables=tables)
    return engine


class WriterLock:
    """One writer at a time on an SQLite file, across this process's threads and other
    processes (an ``flock`` on ``PATH.lock``), each waiter woken as soon as it is free.

    SQLite lets one transaction write at a time and its busy handler retries a refused one
    after sleeps that grow to 100 ms: under 16 concurrent ``POST /v1/events`` that retrying
    was the 1–2 s p99. Waiting on a lock instead costs only the writes ahead (each a few
    milliseconds). PostgreSQL locks rows and needs none of this."""

    def __init__(self, database: str | None) -> None:
        self._threads = threading.Lock()
        self._file = None
        if database and database != ":memory:" and fcntl is not None:
            self._file = open(f"{database}.lock", "a+b")  # noqa: SIM115 (held open: closed in close)

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._threads:
            if self._file is None:
                yield
                return
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class DatabaseEventStream:
    """``EventStream`` on the ``event_stream`` and ``event_dead_letters`` tables."""

    name = SOURCE

    def __init__(
        self,
        engine: Engine,
        *,
        claim_idle_seconds: float = 60.0,
        clock: Clock | None = None,
        owns_engine: bool = False,
    ) -> None:
        self.engine = engine
        self.owns_engine = owns_engine  # its own SQLite file: disposed of by close()
        self.claim_idle = timedelta(seconds=claim_idle_seconds)
        self.clock = clock or SystemClock()
        sqlite = engine.dialect.name == "sqlite"
        self._lock = WriterLock(engine.url.database) if sqlite else None

    def append(self, tenant_id: str, events: Sequence[Any]) -> list[str]:
        if not events:
            return []
        now = self.clock.now()
        rows = [
            {"tenant_id": tenant_id, "payload": encode_event(event), "appended_at": now}
            for event in events
        ]
        with self._writing(), self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                return self._copy_append(connection, rows)
            # One executemany, no RETURNING (SQLAlchemy would page it through multi-row
            # VALUES and sort the ids): the edge does not need them, as on PostgreSQL.
            connection.execute(insert(StreamEntry).values(deliveries=0), rows)
        return []

    @staticmethod
    def _copy_append(connection: Connection, rows: list[dict[str, Any]]) -> list[str]:
        """Binary COPY: PostgreSQL's cheapest insert (a multi-row INSERT spends its time
        converting thousands of parameters); the ids are not needed by the edge."""
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        statement = (
            "COPY event_stream (tenant_id, payload, appended_at, deliveries) "
            "FROM STDIN (FORMAT BINARY)"
        )
        with cursor.copy(statement) as copy:
            copy.set_types(["text", "text", "timestamptz", "int4"])
            for row in rows:
                copy.write_row((row["tenant_id"], row["payload"], row["appended_at"], 0))
        return []

    def read(self, consumer: str, count: int, *, block_seconds: float = 0.0) -> list[Entry]:
        # Never blocks: the consumer waits between empty reads (and is woken by appends).
        now = self.clock.now()
        e = StreamEntry.__table__.c
        claimable = (
            select(e.id)
            .where(or_(e.claimed_at.is_(None), e.claimed_at <= now - self.claim_idle))
            .order_by(e.id)
            .limit(count)
        )
        if self.engine.dialect.name == "postgresql":
            claimable = claimable.with_for_update(skip_locked=True)
        statement = (
            update(StreamEntry)
            .where(e.id.in_(claimable.scalar_subquery()))
            .values(claimed_by=consumer, claimed_at=now, deliveries=e.deliveries + 1)
            .returning(e.id, e.tenant_id, e.payload, e.deliveries)
        )
        with self._writing(), self.engine.begin() as connection:
            rows = list(connection.execute(statement).all())
        rows.sort(key=lambda row: int(row[0]))
        return [Entry(str(row[0]), row[1], decode_event(row[2]), int(row[3])) for row in rows]

    def ack(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._writing(), self.engine.begin() as connection:
            connection.execute(delete(StreamEntry).where(StreamEntry.id.in_([int(i) for i in ids])))

    def dead_letter(self, entry: Entry, category: Category, error: str) -> None:
        with self._writing(), self.engine.begin() as connection:
            connection.execute(
                insert(DeadLetterRow).values(
                    category=category.value,
                    source=self.name,
                    entry_id=entry.id,
                    tenant_id=entry.tenant_id,
                    payload=encode_event(entry.event),
                    error=error,
                    attempts=entry.deliveries,
                    created_at=self.clock.now(),
                )
            )
            connection.execute(delete(StreamEntry).where(StreamEntry.id == int(entry.id)))

    def lag(self) -> Lag:
        query = select(func.count(), func.min(StreamEntry.appended_at))
        with self.engine.connect() as connection:
            count, oldest = connection.execute(query).one()
        if not count or oldest is None:
            return Lag(0, None)
        if oldest.tzinfo is None:  # SQLite's aggregate bypasses the column type
            from datetime import UTC, datetime

            oldest = datetime.fromisoformat(str(oldest)).replace(tzinfo=UTC)
        age = (self.clock.now() - oldest).total_seconds()
        return Lag(int(count), max(age, 0.0))

    def dead_letter_counts(self) -> dict[Category, int]:
        query = select(DeadLetterRow.category, func.count()).group_by(DeadLetterRow.category)
        with self.engine.connect() as connection:
            found = {str(row[0]): int(row[1]) for row in connection.execute(query)}
        return {category: int(found.get(category.value, 0)) for category in Category}

    def dead_letters(self, category: Category, *, limit: int = 20) -> list[DeadLetter]:
        query = (
            select(DeadLetterRow)
            .where(DeadLetterRow.category == category.value)
            .order_by(DeadLetterRow.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            DeadLetter(
                id=str(row.id),
                category=Category(row.category),
                source=row.source,
                entry_id=row.entry_id,
                tenant_id=row.tenant_id,
                event=decode_event(row.payload),
                error=row.error,
                attempts=row.attempts,
                at=row.created_at.timestamp(),
            )
            for row in rows
        ]

    def remove_dead_letters(self, category: Category, ids: Sequence[str] | None = None) -> int:
        statement = delete(DeadLetterRow).where(DeadLetterRow.category == category.value)
        if ids is not None:
            statement = statement.where(DeadLetterRow.id.in_([int(i) for i in ids]))
        with self._writing(), self.engine.begin() as connection:
            return int(connection.execute(statement).rowcount)

    def _writing(self) -> Any:
        """Held around each write transaction (SQLite: ``WriterLock``; PostgreSQL: nothing)."""
        return self._lock.held() if self._lock is not None else nullcontext()

    def close(self) -> None:
        """Dispose of the stream's own engine (the app's engine belongs to the caller)."""
        if self._lock is not None:
            self._lock.close()
        if self.owns_engine:
            self.engine.dispose()
