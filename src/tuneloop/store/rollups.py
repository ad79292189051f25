"""Maintaining ``unit_rollups``: fold the rows an insert actually wrote, upsert the sums.

``store.events.insert_events`` calls ``add_to_rollups`` in its own transaction with only
the rows the database accepted (a redelivered key is refused by the events' primary key
and never reaches the fold), so a rollup counts each event exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, case, text
from sqlalchemy.dialects import postgresql, sqlite

from tuneloop.store.rollup_models import KEY, NONE, SUMMED, UnitRollup

# Positions in a row tuple of ``store.events.COLUMNS``.
(_TENANT, _KEY, _EXPERIMENT, _UNIT, _ARM, _MODEL) = (0, 1, 2, 3, 4, 5)
(_KIND, _ENGAGEMENT, _TOKENS, _COST, _LATENCY, _ERROR, _TS) = (8, 9, 10, 11, 12, 13, 14)
PAGE = 2000  # rollup rows per upsert statement

Key = tuple[str, str, str, str, str, datetime]


def hour_of(ts: datetime) -> datetime:
    """The bucket an event falls in: the start of its UTC hour."""
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def fold(rows: Iterable[Sequence[Any]]) -> dict[Key, dict[str, Any]]:
    """Sum event rows (``store.events.COLUMNS`` order) per rollup key."""
    folded: dict[Key, dict[str, Any]] = {}
    for row in rows:
        key = (
            row[_TENANT],
            row[_EXPERIMENT] or NONE,
            row[_ARM] or NONE,
            row[_MODEL] or NONE,
            row[_UNIT],
            hour_of(row[_TS]),
        )
        sums = folded.get(key)
        if sums is None:
            sums = folded[key] = dict.fromkeys(SUMMED, 0) | {"first_exposure_at": None}
        _add(sums, row)
    return folded


def _add(sums: dict[str, Any], row: Sequence[Any]) -> None:
    kind = row[_KIND]
    if kind == "exposure":
        sums["exposures"] += 1
        first = sums["first_exposure_at"]
        if first is None or row[_TS] < first:
            sums["first_exposure_at"] = row[_TS]
    elif kind == "outcome":
        sums["outcomes"] += 1
        if row[_ENGAGEMENT] is not None:
            sums["engaged"] += 1
            sums["engagement_sum"] += row[_ENGAGEMENT]
    else:
        sums["generations"] += 1
        sums["errors"] += 1 if row[_ERROR] else 0
        if row[_LATENCY] is not None:
            sums["latency_n"] += 1
            sums["latency_sum"] += row[_LATENCY]
        sums["tokens_sum"] += row[_TOKENS] or 0
        if row[_COST] is not None:
            sums["cost_n"] += 1
            sums["cost_sum"] += row[_COST]


def add_to_rollups(connection: Connection, rows: Iterable[Sequence[Any]]) -> int:
    """Add the sums of ``rows`` to their rollups (in the caller's transaction); rollup rows
    are upserted in key order, so concurrent consumers lock them in one order (no deadlock)."""
    folded = fold(rows)
    if not folded:
        return 0
    if connection.dialect.name == "postgresql":
        return _copy_upsert(connection, folded)
    params = [dict(zip(KEY, key, strict=True)) | folded[key] for key in sorted(folded)]
    for start in range(0, len(params), PAGE):
        connection.execute(_upsert(connection), params[start : start + PAGE])
    return len(params)


def _copy_upsert(connection: Connection, folded: dict[Key, dict[str, Any]]) -> int:
    """PostgreSQL: binary COPY into a temporary table, then one ``INSERT … SELECT … ON
    CONFLICT DO UPDATE`` (a row-per-statement executemany doubled the ingest time)."""
    connection.execute(
        text(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} ON COMMIT DELETE ROWS AS "
            f"SELECT {_ALL} FROM unit_rollups WITH NO DATA"
        )
    )
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {_STAGING} ({_ALL}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(list(_COPY_TYPES))
        for key, sums in folded.items():
            copy.write_row((*key, *(sums[name] for name in _VALUES)))
    connection.execute(text(_UPSERT_SQL))
    connection.execute(text(f"DELETE FROM {_STAGING}"))  # a next batch in this transaction
    return len(folded)


_STAGING = "_tuneloop_incoming_rollups"
_VALUES = (*SUMMED, "first_exposure_at")
_ALL = ", ".join((*KEY, *_VALUES))
_COPY_TYPES = (
    *["text"] * 5,
    "timestamptz",  # bucket
    *["int4"] * 3,  # exposures, outcomes, engaged
    "float8",  # engagement_sum
    *["int4"] * 3,  # generations, errors, latency_n
    "float8",  # latency_sum
    "int8",  # tokens_sum
    "int4",  # cost_n
    "float8",  # cost_sum
    "timestamptz",  # first_exposure_at
)
_UPSERT_SQL = (
    f"INSERT INTO unit_rollups ({_ALL}) SELECT {_ALL} FROM {_STAGING} "
    f"ORDER BY {', '.join(KEY)} "
    f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET "
    + ", ".join(f"{name} = unit_rollups.{name} + EXCLUDED.{name}" for name in SUMMED)
    + ", first_exposure_at = LEAST(unit_rollups.first_exposure_at, EXCLUDED.first_exposure_at)"
)


def _upsert(connection: Connection) -> Any:
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(UnitRollup)
    table, new = UnitRollup.__table__.c, statement.excluded
    first, seen = table.first_exposure_at, new.first_exposure_at
    updates: dict[str, Any] = {name: table[name] + new[name] for name in SUMMED}
    # min() that ignores a missing side (SQLite's min(NULL, x) is NULL, PostgreSQL's least not)
    updates["first_exposure_at"] = case(
        (first.is_(None), seen), (seen.is_not(None) & (seen < first), seen), else_=first
    )
    return statement.on_conflict_do_update(index_elements=list(KEY), set_=updates)
