"""Outcome events repository: idempotent batch inserts and per-arm sufficient statistics in SQL.

Write paths (docs/decisions/0006-assignment-and-events.md; bench/ingest.py measures them):

- ``copy`` (PostgreSQL, the default there): binary ``COPY`` straight into ``outcome_events`` inside
  a savepoint, streaming rows while the caller is still validating the next ones. If any
  key is already stored (a retried batch) the primary key refuses it, the savepoint is
  rolled back and the same rows go through a temporary table and
  ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``.
- ``values`` (SQLite, or asked for): ``INSERT ... ON CONFLICT DO NOTHING`` for many rows.

Both count what was actually inserted, so ``offered - inserted`` are duplicates, and add
exactly the inserted rows to ``unit_rollups`` in the same transaction (``store.rollups``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine, String, bindparam, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from tuneloop.store.db import one_statement
from tuneloop.store.experiment_models import OutcomeEvent
from tuneloop.store.rollups import add_to_rollups

WriteMethod = Literal["auto", "copy", "values"]

# The order of a row tuple handed to ``insert_events``.
COLUMNS = (
    "tenant_id",
    "idempotency_key",
    "experiment_key",
    "unit_id",
    "arm",
    "model_id",
    "post_id",
    "generation_id",
    "kind",
    "engagement",
    "tokens",
    "cost",
    "latency_ms",
    "error",
    "ts",
    "received_at",
)
_COLUMN_LIST = ", ".join(COLUMNS)
# PostgreSQL types of COLUMNS for binary COPY (varchar takes text's binary form): binary
# rows are 2-3x cheaper to format than text, above all the timestamps.
COPY_TYPES = (
    *["text"] * 9,
    "float8",  # engagement
    "int4",  # tokens
    "float8",  # cost
    "float8",  # latency_ms
    "bool",  # error
    "timestamptz",  # ts
    "timestamptz",  # received_at
)
_STAGING = "_tuneloop_incoming_events"


@dataclass(frozen=True)
class Written:
    offered: int
    inserted: int

    @property
    def duplicates(self) -> int:
        return self.offered - self.inserted


def insert_events(
    engine: Engine, rows: Iterable[Sequence[Any]], *, method: WriteMethod = "auto"
) -> Written:
    """Insert row tuples (``COLUMNS`` order) in one transaction; count the new ones.

    ``rows`` may be a lazy iterator: on PostgreSQL it is consumed while ``COPY`` streams.
    Rows whose ``(tenant_id, idempotency_key)`` is already stored, or repeated within
    ``rows``, are skipped.
    """
    with engine.begin() as connection:
        if method != "values" and connection.dialect.name == "postgresql":
            return _copy_insert(connection, rows)
        return _values_insert(connection, list(rows))


def _values_insert(connection: Connection, rows: list[Sequence[Any]]) -> Written:
    if not rows:
        return Written(0, 0)
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(OutcomeEvent)
        .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
        .returning(*(OutcomeEvent.__table__.c[name] for name in COLUMNS))
    )
    params = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    # SQLAlchemy sends this as multi-row VALUES pages ("insertmanyvalues").
    inserted = connection.execute(statement, params).all()
    add_to_rollups(connection, inserted)
    return Written(len(rows), len(inserted))


def _copy_insert(connection: Connection, rows: Iterable[Sequence[Any]]) -> Written:
    import psycopg.errors  # PostgreSQL only, and not at import: the CLI starts faster

    seen: list[Sequence[Any]] = []  # kept to replay through the staging table on a conflict
    stream = _remember(rows, seen)
    try:
        with connection.begin_nested():
            copied = _copy(connection, "outcome_events", stream)
        add_to_rollups(connection, seen)  # every row went in
        return Written(copied, copied)
    except psycopg.errors.UniqueViolation:
        # A key already stored (or repeated in the batch): take the slower, safe path.
        # The COPY may have failed mid-stream: the rows not read yet belong to the batch too.
        for _ in stream:
            pass
    connection.execute(
        text(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} ON COMMIT DELETE ROWS AS "
            f"SELECT {_COLUMN_LIST} FROM outcome_events WITH NO DATA"
        )
    )
    _copy(connection, _STAGING, seen)
    result = connection.execute(
        text(
            f"INSERT INTO outcome_events ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM {_STAGING} "
            f"ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING {_COLUMN_LIST}"
        )
    ).all()
    add_to_rollups(connection, result)  # only the rows that went in: no double counting
    return Written(len(seen), len(result))


def _remember(rows: Iterable[Sequence[Any]], seen: list[Sequence[Any]]) -> Iterable[Sequence[Any]]:
    for row in rows:
        seen.append(row)
        yield row


def _copy(connection: Connection, table: str, rows: Iterable[Sequence[Any]]) -> int:
    from psycopg.copy import QueuedLibpqWriter

    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    statement = f"COPY {table} ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
    # A worker thread sends the data, so validating the next rows never waits on the socket.
    with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
        copy.set_types(list(COPY_TYPES))
        for row in rows:
            copy.write_row(row)
    return max(cursor.rowcount, 0)


@dataclass(frozen=True)
class GenerationLinks:
    """What an event naming a generation inherits from it."""

    unit_id: str
    model_id: str | None
    experiment_key: str | None
    arm: str | None


def generations_by_id(
    engine: Engine, tenant_id: str, generation_ids: Iterable[str]
) -> dict[str, GenerationLinks]:
    """The recorded generations of ``tenant_id`` among ``generation_ids`` (partial index)."""
    e = OutcomeEvent.__table__.c
    wanted = sorted(set(generation_ids))
    found: dict[str, GenerationLinks] = {}
    with engine.connect() as connection:
        for start in range(0, len(wanted), 500):
            query = select(e.generation_id, e.unit_id, e.model_id, e.experiment_key, e.arm).where(
                e.tenant_id == tenant_id,
                e.kind == "generation",
                e.generation_id.in_(wanted[start : start + 500]),
            )
            for row in connection.execute(query):
                found[row[0]] = GenerationLinks(*row[1:])
    return found


def count_events(engine: Engine, tenant_id: str, experiment_key: str | None = None) -> int:
    query = (
        select(func.count()).select_from(OutcomeEvent).where(OutcomeEvent.tenant_id == tenant_id)
    )
    if experiment_key is not None:
        query = query.where(OutcomeEvent.experiment_key == experiment_key)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def stored_keys(engine: Engine, tenant_id: str, keys: Iterable[str]) -> set[str]:
    """The idempotency keys among ``keys`` already stored for the tenant (one indexed read).

    On PostgreSQL the keys go as one array, each probed on the primary key (a ``LATERAL``
    lookup per key): one statement whatever the count, prepared once per connection, half
    the cost of an ``IN`` list of 100 parameters; and a plan that stays a unique-index probe
    when the table's statistics are stale (after a burst the planner, estimating a few
    rows per tenant, scanned the whole tenant for ``IN``/``= ANY``: 60 ms instead of 2 ms
    at 200,000 events)."""
    wanted = list(set(keys))
    if not wanted:
        return set()
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # One statement, no transaction around it (``one_statement``): BEGIN and
            # ROLLBACK would be two more round trips per request.
            found = one_statement(connection).execute(
                _STORED_ANY, {"tenant": tenant_id, "keys": wanted}
            )
        else:
            found = connection.execute(
                select(OutcomeEvent.idempotency_key).where(
                    OutcomeEvent.tenant_id == tenant_id,
                    OutcomeEvent.idempotency_key.in_(wanted),
                )
            )
        return set(found.scalars().all())


_STORED_ANY = text(
    "SELECT wanted.key FROM unnest(CAST(:keys AS text[])) AS wanted(key) "
    "CROSS JOIN LATERAL (SELECT 1 FROM outcome_events AS e WHERE e.tenant_id = :tenant "
    "AND e.idempotency_key = wanted.key LIMIT 1) AS stored"
).bindparams(bindparam("keys", type_=postgresql.ARRAY(String)))
