"""Deployments repository (tenant-scoped): add, find, list, compare-and-set transitions with
their audit entry, and the SQL aggregates a rollout is judged on.

Rollout traffic is recorded as outcome events *without* an experiment key whose
``model_id`` is the label routing handed out (``MODEL@VERSION``); an experiment's events
belong to the experiment and are not counted here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, Float, Select, cast, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tuneloop.domain.experiments import Moments
from tuneloop.errors import ConflictError, NotFoundError
from tuneloop.store.db import read_page
from tuneloop.store.deployment_models import Deployment, DeploymentEvent
from tuneloop.store.experiment_models import OutcomeEvent
from tuneloop.store.rollup_models import NONE, UnitRollup
from tuneloop.store.rollup_windows import window_rows

KEY_PREFIX = "deploy"
ACTIVE_STATUSES = ("rolling_out", "promoting", "rolling_back")  # as ACTIVE_SQL


def next_deployment_id(engine: Engine, tenant_id: str, day: date) -> str:
    """The next free id of the day for the tenant: ``deploy-20250102-001``, ``-002``, ..."""
    prefix = f"{KEY_PREFIX}-{day:%Y%m%d}-"
    query = select(Deployment.id).where(
        Deployment.tenant_id == tenant_id, Deployment.id.startswith(prefix, autoescape=True)
    )
    with engine.connect() as connection:
        ids = connection.execute(query).scalars().all()
    numbers = [int(found[len(prefix) :]) for found in ids if found[len(prefix) :].isdigit()]
    return f"{prefix}{max(numbers, default=0) + 1:03d}"


def add_deployment(engine: Engine, row: Deployment, event: DeploymentEvent) -> Deployment:
    """Store a new deployment and its first audit entry; a second active one is refused."""
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            session.add(row)
            session.flush()
            session.add(event)
    except IntegrityError:
        raise ConflictError(
            f"tenant {row.tenant_id!r} already has an active deployment (or id {row.id!r} "
            "is taken); finish or roll it back first"
        ) from None
    return row


def get_deployment(engine: Engine, tenant_id: str, deployment_id: str) -> Deployment:
    with Session(engine, expire_on_commit=False) as session:
        found = session.get(Deployment, (tenant_id, deployment_id))
    if found is None:
        raise NotFoundError(f"deployment {deployment_id!r} not found for tenant {tenant_id!r}")
    return found


def _newest_first(tenant_id: str, status: str | None = None) -> Select[Deployment]:
    query = select(Deployment).where(Deployment.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Deployment.status == status)
    return query.order_by(Deployment.created_at.desc(), Deployment.id.desc())


def list_deployments(
    engine: Engine, tenant_id: str, *, status: str | None = None, limit: int = 50, offset: int = 0
) -> Sequence[Deployment]:
    """Newest first."""
    query = _newest_first(tenant_id, status).limit(limit).offset(offset)
    with Session(engine, expire_on_commit=False) as session:
        return session.scalars(query).all()


def deployments_page(
    engine: Engine, tenant_id: str, *, limit: int = 50, offset: int = 0
) -> tuple[Sequence[Deployment], int]:
    """A page of the tenant's deployments, newest first, and their total: one transaction."""
    count = select(func.count()).where(Deployment.tenant_id == tenant_id)
    return read_page(engine, _newest_first(tenant_id).limit(limit).offset(offset), count)


def rolled_back_deployment(
    engine: Engine, tenant_id: str, model_id: str, version: str
) -> Deployment | None:
    """The latest rolled-back deployment of ``model_id@version``, if any."""
    query = (
        select(Deployment)
        .where(
            Deployment.tenant_id == tenant_id,
            Deployment.model_id == model_id,
            Deployment.version == version,
            Deployment.status == "rolled_back",
        )
        .order_by(Deployment.created_at.desc())
    )
    with Session(engine, expire_on_commit=False) as session:
        return session.scalars(query).first()


def active_deployment(engine: Engine, tenant_id: str) -> Deployment | None:
    query = select(Deployment).where(
        Deployment.tenant_id == tenant_id, Deployment.status.in_(ACTIVE_STATUSES)
    )
    with Session(engine, expire_on_commit=False) as session:
        return session.scalars(query).first()


def deployment_for_experiment(engine: Engine, tenant_id: str, ab_test_id: str) -> Deployment | None:
    """The deployment made from an A/B test (a run's rollout finds its own again by it)."""
    query = (
        select(Deployment)
        .where(Deployment.tenant_id == tenant_id, Deployment.ab_test_id == ab_test_id)
        .order_by(Deployment.created_at.desc(), Deployment.id.desc())
    )
    with Session(engine, expire_on_commit=False) as session:
        return session.scalars(query.limit(1)).first()


def active_deployment_ids(engine: Engine) -> list[tuple[str, str]]:
    """``(tenant_id, id)`` of every active deployment: what a scheduler's tick walks."""
    query = (
        select(Deployment.tenant_id, Deployment.id)
        .where(Deployment.status.in_(ACTIVE_STATUSES))
        .order_by(Deployment.tenant_id, Deployment.id)
    )
    with engine.connect() as connection:
        return [(str(t), str(i)) for t, i in connection.execute(query).all()]


def compare_and_set(
    engine: Engine,
    row: Deployment,
    values: dict[str, Any],
    *,
    event: dict[str, Any] | None = None,
) -> Deployment | None:
    """Write ``values`` (and the audit ``event``) only if the row is still at ``row.row_version``.

    Returns the updated row, or None when another process changed it first (the caller's
    view is stale: it should re-read, never retry blindly).
    """
    new_version = row.row_version + 1
    statement = (
        update(Deployment)
        .where(
            Deployment.tenant_id == row.tenant_id,
            Deployment.id == row.id,
            Deployment.row_version == row.row_version,
        )
        .values(**values, row_version=new_version)
    )
    with Session(engine, expire_on_commit=False) as session, session.begin():
        if not session.execute(statement).rowcount:  # type: ignore[attr-defined]
            return None
        if event is not None:
            session.add(
                DeploymentEvent(
                    tenant_id=row.tenant_id, deployment_id=row.id, seq=new_version, **event
                )
            )
    return get_deployment(engine, row.tenant_id, row.id)


def _events_of(tenant_id: str, deployment_id: str) -> Select[DeploymentEvent]:
    return (
        select(DeploymentEvent)
        .where(
            DeploymentEvent.tenant_id == tenant_id,
            DeploymentEvent.deployment_id == deployment_id,
        )
        .order_by(DeploymentEvent.seq)
    )


def list_events(engine: Engine, tenant_id: str, deployment_id: str) -> Sequence[DeploymentEvent]:
    with Session(engine, expire_on_commit=False) as session:
        return session.scalars(_events_of(tenant_id, deployment_id)).all()


def deployment_with_events(
    engine: Engine, tenant_id: str, deployment_id: str
) -> tuple[Deployment, Sequence[DeploymentEvent]]:
    """A deployment and its audit trail, oldest entry first: one transaction."""
    with Session(engine, expire_on_commit=False) as session:
        found = session.get(Deployment, (tenant_id, deployment_id))
        if found is None:
            raise NotFoundError(f"deployment {deployment_id!r} not found for tenant {tenant_id!r}")
        return found, session.scalars(_events_of(tenant_id, deployment_id)).all()


# --- what a rollout is judged on ---------------------------------------------------------


@dataclass(frozen=True)
class GenerationHealth:
    """One model's generations in a window: how many, how many failed, p95 latency."""

    generations: int
    errors: int
    p95_latency_ms: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.generations if self.generations else None


def _rollout_events(tenant_id: str, start: datetime, end: datetime) -> list[Any]:
    e = OutcomeEvent.__table__.c
    # experiment_key IS NULL keeps to the (tenant_id, experiment_key) index's prefix.
    return [e.tenant_id == tenant_id, e.experiment_key.is_(None), e.ts >= start, e.ts <= end]


def _rollout_rows(
    tenant_id: str, labels: Sequence[str], *, start: datetime, end: datetime, dialect: str
) -> Any:
    """Rollup-shaped rows per (model, unit) of the models' events in ``[start, end]``."""
    r, e = UnitRollup.__table__.c, OutcomeEvent.__table__.c
    return window_rows(
        ("model_id", "unit_id"),
        rollups=[r.tenant_id == tenant_id, r.experiment_key == NONE, r.model_id.in_(list(labels))],
        events=[
            e.experiment_key.is_(None),
            e.model_id.in_(list(labels)),
        ],
        dialect=dialect,
        start=start,
        end=end,
    ).c


def engagement_moments(
    engine: Engine, tenant_id: str, labels: Sequence[str], *, start: datetime, end: datetime
) -> dict[str, Moments]:
    """Per model label: n / sum / sum of squares of each unit's mean engagement (read from
    the hourly rollups: the cost follows units x hours, not events)."""
    rows = _rollout_rows(tenant_id, labels, start=start, end=end, dialect=engine.dialect.name)
    engaged = func.sum(rows.engaged)
    value = cast(func.sum(rows.engagement_sum), Float) / cast(engaged, Float)
    per_unit = (
        select(rows.model_id, value.label("value"))
        .group_by(rows.model_id, rows.unit_id)
        .having(engaged > 0)
        .subquery("per_unit")
    )
    u = per_unit.c
    query = select(u.model_id, func.count(), func.sum(u.value), func.sum(u.value * u.value))
    with engine.connect() as connection:
        rows_found = connection.execute(query.group_by(u.model_id)).all()
    found = {str(m): Moments(int(n), float(s or 0.0), float(q or 0.0)) for m, n, s, q in rows_found}
    return {label: found.get(label, Moments(0, 0.0, 0.0)) for label in labels}


def generation_health(
    engine: Engine, tenant_id: str, label: str, *, start: datetime, end: datetime
) -> GenerationHealth:
    """Counts from the rollups; the p95 (nearest rank) by one ordered, offset read of the
    window's generations on both databases (a quantile has no sum to roll up)."""
    e = OutcomeEvent.__table__.c
    where = [*_rollout_events(tenant_id, start, end), e.kind == "generation", e.model_id == label]
    rows = _rollout_rows(tenant_id, [label], start=start, end=end, dialect=engine.dialect.name)
    counts = select(func.sum(rows.generations), func.sum(rows.errors), func.sum(rows.latency_n))
    with engine.connect() as connection:
        total, errors, timed = connection.execute(counts).one()
        p95 = None
        if timed:
            rank = math.ceil(0.95 * int(timed))
            p95 = connection.execute(
                select(e.latency_ms)
                .where(*where, e.latency_ms.is_not(None))
                .order_by(e.latency_ms)
                .offset(rank - 1)
                .limit(1)
            ).scalar_one()
    return GenerationHealth(int(total or 0), int(errors or 0), None if p95 is None else float(p95))
