"""Outcome events repository: idempotent batch inserts and per-arm sufficient statistics in SQL.

Write paths (docs/decisions/0006-assignment-and-events.md; bench/ingest.py measures them):

- ``copy`` (PostgreSQL, the default there): binary ``COPY`` straight into ``outcome_events`` inside
  a savepoint, streaming rows while the caller is still validating the next ones. If any
  key is already stored (a retried batch) the primary key refuses it, the savepoint is
  rolled back and the same rows go through a temporary table and
  ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``.
- ``values`` (SQLite, or asked for): ``INSERT ... ON CONFLICT DO NOTHING`` for many rows.

Both count what was actually inserted, so ``offered - inserted`` are duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Float, case, cast, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from tuneloop.domain.experiments import (
    METRICS,
    RATIO_METRICS,
    ArmStatistics,
    Moments,
    PrePeriod,
    RatioMoments,
    RatioPrePeriod,
)
from tuneloop.store.experiment_models import OutcomeEvent

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
        .returning(OutcomeEvent.idempotency_key)
    )
    params = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    # SQLAlchemy sends this as multi-row VALUES pages ("insertmanyvalues").
    return Written(len(rows), len(connection.execute(statement, params).all()))


def _copy_insert(connection: Connection, rows: Iterable[Sequence[Any]]) -> Written:
    import psycopg.errors  # PostgreSQL only, and not at import: the CLI starts faster

    seen: list[Sequence[Any]] = []  # kept to replay through the staging table on a conflict
    stream = _remember(rows, seen)
    try:
        with connection.begin_nested():
            copied = _copy(connection, "outcome_events", stream)
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
            "ON CONFLICT (tenant_id, idempotency_key) DO NOTHING"
        )
    )
    return Written(len(seen), int(result.rowcount))


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


def arm_statistics(
    engine: Engine,
    tenant_id: str,
    experiment_key: str,
    *,
    until: datetime | None = None,
    pre_period_since: datetime | None = None,
) -> list[ArmStatistics]:
    """Per arm: exposed units, n / sum / sum of squares of each metric over units, the
    ratio metrics' sums and the engagement's pre-exposure (CUPED) sums, in one query.

    Each metric is first reduced to one value per unit (the randomisation unit), so that
    many events from one unit do not pass for independent observations:

    - ``engagement``: the unit's mean engagement over its outcome events;
    - ``cost_per_token``: the unit's total cost / total tokens over its generations;
    - ``latency_ms``: the unit's mean latency over its generations;
    - ``error_rate``: the unit's share of generations that failed.

    A unit without events of a kind has no value for that metric (it is not a zero).
    Ratio metrics (``RATIO_METRICS``) carry per arm the sums of the unit's numerator M and
    denominator D, of M², D² and M·D: ``engagement_per_post`` is M = the unit's total
    engagement, D = its outcome events; ``cost_per_token`` M = its cost, D = its tokens.
    The pre-period of ``engagement`` is the unit's mean engagement over outcome events
    before its first exposure in this experiment (and not before ``pre_period_since``).
    ``until`` counts only events that happened by then (the evidence at an earlier look).
    """
    values = _per_unit_values(tenant_id, experiment_key, until)
    pre_period = _pre_period(tenant_id, experiment_key, pre_period_since)
    # joined per unit (hundreds of rows), not per event
    per_unit = (
        select(
            values,
            pre_period.c.pre_engagement,
            pre_period.c.pre_engagement_sum,
            pre_period.c.pre_posts,
        )
        .outerjoin(pre_period, values.c.unit_id == pre_period.c.unit_id)
        .subquery("per_unit_with_pre")
    )
    u = per_unit.c
    columns: list[Any] = [u.arm, func.sum(u.exposed)]
    for metric in METRICS:
        value = u[metric]
        columns += [func.count(value), func.sum(value), func.sum(value * value)]
    for metric in RATIO_METRICS:
        m, d = u[f"{metric}_m"], u[f"{metric}_d"]
        columns += [func.count(d), func.sum(m), func.sum(m * m)]
        columns += [func.sum(d), func.sum(d * d), func.sum(m * d)]
    post, pre = u.engagement, func.coalesce(u.pre_engagement, 0.0)
    has_post = post.is_not(None)
    columns += [
        func.count(case((has_post, u.pre_engagement))),
        func.sum(case((has_post, pre))),
        func.sum(case((has_post, pre * pre))),
        func.sum(post * pre),
    ]
    columns += _ratio_pre_period_columns(u)
    query = select(*columns).group_by(u.arm).order_by(u.arm)
    with engine.connect() as connection:
        result = connection.execute(query).all()
    return [_arm_statistics(row) for row in result]


def _ratio_pre_period_columns(u: Any) -> list[Any]:
    """engagement_per_post before exposure (M0 = engagement, D0 = posts; 0 without history)
    over the units with the ratio after exposure: ΣM0, ΣM0², ΣD0, ΣD0² and the products."""
    m, d = u.engagement_per_post_m, u.engagement_per_post_d
    m0, d0 = func.coalesce(u.pre_engagement_sum, 0.0), func.coalesce(u.pre_posts, 0.0)
    has = d.is_not(None)
    return [
        func.count(case((has, u.pre_posts))),
        *(
            func.sum(case((has, value)))
            for value in (m0, m0 * m0, d0, d0 * d0, m * m0, d * d0, m0 * d0, m * d0, m0 * d)
        ),
    ]


def _pre_period(tenant_id: str, experiment_key: str, since: datetime | None) -> Any:
    """Each exposed unit's mean engagement before its first exposure in the experiment."""
    e = OutcomeEvent.__table__.c
    first = (
        select(e.unit_id, func.min(e.ts).label("first_ts"))
        .where(e.tenant_id == tenant_id, e.experiment_key == experiment_key)
        .where(e.kind == "exposure")
        .group_by(e.unit_id)
        .subquery("first_exposure")
    )
    query = (
        select(
            first.c.unit_id,
            cast(func.avg(e.engagement), Float).label("pre_engagement"),
            cast(func.sum(e.engagement), Float).label("pre_engagement_sum"),
            cast(func.count(e.engagement), Float).label("pre_posts"),
        )
        .join(first, e.unit_id == first.c.unit_id)
        .where(e.tenant_id == tenant_id, e.kind == "outcome", e.ts < first.c.first_ts)
        .group_by(first.c.unit_id)
    )
    if since is not None:
        query = query.where(e.ts >= since)
    # Computed once: right after a bulk insert PostgreSQL's row estimates are 1, and as a
    # plain subquery it was re-run for every unit (minutes instead of milliseconds).
    return query.cte("pre_period").prefix_with("MATERIALIZED", dialect="postgresql")


def _per_unit_values(tenant_id: str, experiment_key: str, until: datetime | None) -> Any:
    e = OutcomeEvent.__table__.c
    where = [e.tenant_id == tenant_id, e.experiment_key == experiment_key]
    if until is not None:
        where.append(e.ts <= until)
    generation, outcome = e.kind == "generation", e.kind == "outcome"
    tokens = func.sum(case((generation, e.tokens)))
    cost = cast(func.sum(case((generation, e.cost))), Float)
    outcomes = func.sum(case((outcome, 1.0), else_=0.0))
    priced = (cost.is_not(None)) & (tokens > 0)
    return (
        select(
            e.arm,
            e.unit_id,
            func.max(case((e.kind == "exposure", 1), else_=0)).label("exposed"),
            cast(func.avg(case((outcome, e.engagement))), Float).label("engagement"),
            (cost / func.nullif(tokens, 0)).label("cost_per_token"),
            cast(func.avg(case((generation, e.latency_ms))), Float).label("latency_ms"),
            cast(func.avg(case((generation, case((e.error, 1.0), else_=0.0)))), Float).label(
                "error_rate"
            ),
            cast(func.sum(case((outcome, e.engagement))), Float).label("engagement_per_post_m"),
            func.nullif(outcomes, 0.0).label("engagement_per_post_d"),
            case((priced, cost)).label("cost_per_token_m"),
            cast(case((priced, tokens)), Float).label("cost_per_token_d"),
        )
        .where(*where)
        .group_by(e.arm, e.unit_id)
        .subquery("per_unit")
    )


def _arm_statistics(row: Any) -> ArmStatistics:
    values = list(row)
    metrics: dict[str, Moments] = {}
    for index, metric in enumerate(METRICS):
        n, total, squares = values[2 + 3 * index : 5 + 3 * index]
        metrics[metric] = Moments(int(n or 0), float(total or 0.0), float(squares or 0.0))
    at = 2 + 3 * len(METRICS)
    ratios: dict[str, RatioMoments] = {}
    for metric in RATIO_METRICS:
        n, *sums = values[at : at + 6]
        ratios[metric] = RatioMoments(int(n or 0), *(float(x or 0.0) for x in sums))
        at += 6
    units, pre_sum, pre_squares, products = values[at : at + 4]
    pre = PrePeriod(
        int(units or 0), float(pre_sum or 0.0), float(pre_squares or 0.0), float(products or 0.0)
    )
    ratio_units, *ratio_sums = values[at + 4 : at + 14]
    ratio_pre = RatioPrePeriod(int(ratio_units or 0), *(float(x or 0.0) for x in ratio_sums))
    return ArmStatistics(
        arm=str(values[0]),
        exposed_units=int(values[1] or 0),
        metrics=metrics,
        ratios=ratios,
        pre_period={"engagement": pre},
        ratio_pre_period={"engagement_per_post": ratio_pre},
    )


def stored_keys(engine: Engine, tenant_id: str, keys: Iterable[str]) -> set[str]:
    """The idempotency keys among ``keys`` already stored for the tenant (one indexed read)."""
    wanted = list(set(keys))
    if not wanted:
        return set()
    query = select(OutcomeEvent.idempotency_key).where(
        OutcomeEvent.tenant_id == tenant_id, OutcomeEvent.idempotency_key.in_(wanted)
    )
    with engine.connect() as connection:
        return set(connection.execute(query).scalars().all())
