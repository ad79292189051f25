"""Reading ``unit_rollups`` over a time window, exactly: whole hours from the rollups, the
partial hours at the window's edges from the events themselves.

A window ``[start, end]`` splits into the hours that lie wholly inside it (summed from the
rollups: as many rows as units x hours, however many events they hold) and at most two
partial hours at its edges, whose events are read through ``ix_outcome_events_unit_ts``
and reduced to rollup-shaped rows. The union of both is what the raw events would give.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, case, cast, func, literal, select, true, union_all

from tuneloop.store.experiment_models import OutcomeEvent
from tuneloop.store.rollup_models import NONE, SUMMED, UnitRollup
from tuneloop.store.rollups import hour_of

HOUR = timedelta(hours=1)


def ceil_hour(ts: datetime) -> datetime:
    floor = hour_of(ts)
    return floor if floor == ts else floor + HOUR


def rollup_columns(names: Sequence[str]) -> list[Any]:
    """The grouping columns ``names`` and every summed column of ``unit_rollups``."""
    r = UnitRollup.__table__.c
    return [r[name] for name in (*names, *SUMMED, "first_exposure_at")]


def event_columns(names: Sequence[str]) -> list[Any]:
    """The same columns computed from raw events (to be grouped by ``names``)."""
    e = OutcomeEvent.__table__.c
    kinds = ("exposure", "outcome", "generation")
    exposure, outcome, generation = (e.kind == kind for kind in kinds)

    def count(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    def total(condition: Any, value: Any) -> Any:
        return func.coalesce(func.sum(case((condition, value))), 0)

    keys = [func.coalesce(e[name], NONE).label(name) for name in names]
    return [
        *keys,
        count(exposure).label("exposures"),
        count(outcome).label("outcomes"),
        func.count(case((outcome, e.engagement))).label("engaged"),
        cast(total(outcome, e.engagement), Float).label("engagement_sum"),
        count(generation).label("generations"),
        count(generation & e.error).label("errors"),
        func.count(case((generation, e.latency_ms))).label("latency_n"),
        cast(total(generation, e.latency_ms), Float).label("latency_sum"),
        total(generation, e.tokens).label("tokens_sum"),
        func.count(case((generation, e.cost))).label("cost_n"),
        cast(total(generation, e.cost), Float).label("cost_sum"),
        func.min(case((exposure, e.ts))).label("first_exposure_at"),
    ]


def whole_hours(bucket: Any, *, start: datetime | None, end: Any) -> list[Any]:
    """Rollup rows whose hour lies wholly in the window (``end`` may be a SQL expression:
    the hour that holds it is an edge, read from the events)."""
    where = [] if start is None else [bucket >= ceil_hour(start)]
    if end is not None:
        where.append(bucket < (hour_of(end) if isinstance(end, datetime) else end))
    return where


def edge_hours(
    ts: Any, *, start: datetime | None, end: Any, end_floor: Any, inclusive: bool
) -> list[Any]:
    """Events of the window that lie in its partial edge hours (none if it has no edges)."""
    where: list[Any] = []
    edges: list[Any] = []
    if start is not None:
        where.append(ts >= start)
        edges.append(ts < ceil_hour(start))
    if end is not None:
        where.append(ts <= end if inclusive else ts < end)
        edges.append(ts >= end_floor)
    if not edges:
        return [literal(False)]
    return [*where, edges[0] if len(edges) == 1 else edges[0] | edges[1]]


def per_unit_events(
    columns: Sequence[Any],
    units: Any,
    where: Callable[[Any], list[Any]],
    *,
    dialect: str,
    group_by: Sequence[Any] = (),
) -> Any:
    """``columns`` of the events ``where(units.c)`` selects for each unit of ``units`` (a
    selectable with ``tenant_id`` and ``unit_id``), read unit by unit through
    ``ix_outcome_events_unit_ts``. On PostgreSQL a LATERAL join makes that the plan even
    when the statistics are stale right after a bulk insert (a plain join was planned as
    a scan of every event of the tenant); SQLite probes the index for the join by itself."""
    e = OutcomeEvent.__table__.c
    same_unit = (e.tenant_id == units.c.tenant_id) & (e.unit_id == units.c.unit_id)
    query = select(*columns).where(*where(units.c))
    if dialect == "postgresql":
        # OFFSET 0 keeps the subquery per unit (a plain one would be pulled up into a join)
        per_unit = query.where(same_unit).group_by(*group_by).offset(0).lateral("per_unit")
        return select(*per_unit.c).select_from(units.join(per_unit, true()))
    return query.join(units, same_unit).group_by(*group_by)


def edge_rows(
    names: Sequence[str], units: Any, where: Callable[[Any], list[Any]], *, dialect: str
) -> Any:
    """Rollup-shaped rows, grouped by ``names``, of the events ``where(units.c)`` selects
    for each unit of ``units`` (``per_unit_events``)."""
    e = OutcomeEvent.__table__.c
    keys = [e[name] for name in names]
    return per_unit_events(event_columns(names), units, where, dialect=dialect, group_by=keys)


def window_rows(
    names: Sequence[str],
    *,
    rollups: Sequence[Any],
    events: Sequence[Any],
    dialect: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Any:
    """Rollup-shaped rows (``names`` + sums) of the events in ``[start, end]`` that match:
    ``rollups`` filters ``unit_rollups``, ``events`` the same events in ``outcome_events``.
    The units read at the edges are those with a rollup row in an edge hour."""
    r = UnitRollup.__table__.c
    whole = select(*rollup_columns(names)).where(
        *rollups, *whole_hours(r.bucket, start=start, end=end)
    )
    hours = [hour_of(at) for at in (start, end) if at is not None]
    if start is not None and hour_of(start) == start:
        hours.remove(start)  # an hour that starts the window is whole
    if not hours:
        return whole.subquery("window_rows")
    floor = hour_of(end) if end is not None else None
    units = (
        select(r.tenant_id, r.unit_id).where(*rollups, r.bucket.in_(hours)).distinct().subquery()
    )
    edge = edge_rows(
        names,
        units,
        lambda _: [
            *events,
            *edge_hours(
                OutcomeEvent.__table__.c.ts, start=start, end=end, end_floor=floor, inclusive=True
            ),
        ],
        dialect=dialect,
    )
    return union_all(whole, edge).subquery("window_rows")
