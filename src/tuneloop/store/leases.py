"""The workers' leader lease: acquire, renew, steal when expired, release, record a tick.

Each write is one conditional statement, so two workers racing on SQLite or PostgreSQL
cannot both win: an ``UPDATE ... WHERE holder = me OR expires_at <= now`` (PostgreSQL
re-checks the condition after waiting on the row lock; SQLite serializes writers), and
an ``INSERT`` that the primary key refuses to all but one when no row exists yet.
Times come from the caller's clock, so a test can expire a lease by moving the clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tuneloop.store.worker_models import WorkerLease

LEADER = "worker-leader"


def try_acquire(
    engine: Engine, holder: str, *, now: datetime, ttl: timedelta, name: str = LEADER
) -> bool:
    """Take or renew the lease for ``ttl`` from ``now``; False while another holds it."""
    lease = WorkerLease.__table__.c
    renew = (
        update(WorkerLease)
        .where(lease.name == name, lease.holder == holder)
        .values(renewed_at=now, expires_at=now + ttl)
    )
    steal = (
        update(WorkerLease)
        .where(lease.name == name, lease.holder != holder, lease.expires_at <= now)
        .values(holder=holder, acquired_at=now, renewed_at=now, expires_at=now + ttl)
    )
    with engine.begin() as connection:
        # Renew ours, else steal an expired one: each statement is atomic on its own.
        if connection.execute(renew).rowcount or connection.execute(steal).rowcount:
            return True
        if connection.execute(select(lease.name).where(lease.name == name)).first():
            return False  # held, unexpired, by another
    try:
        with Session(engine) as session, session.begin():
            session.add(
                WorkerLease(
                    name=name, holder=holder, acquired_at=now, renewed_at=now, expires_at=now + ttl
                )
            )
    except IntegrityError:  # somebody holds it (or won the same race)
        return False
    return True


def release(engine: Engine, holder: str, *, now: datetime, name: str = LEADER) -> bool:
    """End our lease now (a graceful stop), so another worker takes over at its next tick."""
    lease = WorkerLease.__table__.c
    with engine.begin() as connection:
        done = connection.execute(
            update(WorkerLease)
            .where(lease.name == name, lease.holder == holder, lease.expires_at > now)
            .values(expires_at=now)
        ).rowcount
    return bool(done)


def record_tick(
    engine: Engine, holder: str, *, at: datetime, summary: dict[str, Any], name: str = LEADER
) -> bool:
    """Store the leader's last tick (shown by /health); False if we no longer lead."""
    lease = WorkerLease.__table__.c
    with engine.begin() as connection:
        done = connection.execute(
            update(WorkerLease)
            .where(lease.name == name, lease.holder == holder)
            .values(last_tick_at=at, last_tick=summary)
        ).rowcount
    return bool(done)


def read_lease(engine: Engine, name: str = LEADER) -> WorkerLease | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.scalars(select(WorkerLease).where(WorkerLease.name == name)).one_or_none()
