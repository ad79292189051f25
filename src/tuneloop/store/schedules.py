"""Per-tenant schedules and claimed fires, and what the worker reads to decide (tenants, runs).

A fire is claimed by inserting its (tenant, fire time) row: the primary key lets exactly
one worker claim it, however many race, so a fire starts at most one run.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, func, select, union, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tuneloop.store.auth_models import ApiKey
from tuneloop.store.pipeline_models import ModelVersion, PipelineRun
from tuneloop.store.worker_models import ScheduleFire, TenantSchedule


def ensure_schedule(engine: Engine, tenant_id: str, *, now: datetime) -> TenantSchedule:
    """The tenant's schedule row, made on first sight: fires before ``anchor_at`` don't count."""
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(TenantSchedule, tenant_id)
        if row is not None:
            return row
        row = TenantSchedule(tenant_id=tenant_id, cron=None, anchor_at=now, updated_at=now)
        session.add(row)
        try:
            session.commit()
            return row
        except IntegrityError:  # another worker made it first
            session.rollback()
    with Session(engine, expire_on_commit=False) as session:
        found = session.get(TenantSchedule, tenant_id)
    assert found is not None
    return found


def set_cron(engine: Engine, tenant_id: str, cron: str | None, *, now: datetime) -> None:
    """Store the tenant's own cron (validated by the caller); None: back to the setting."""
    ensure_schedule(engine, tenant_id, now=now)
    with engine.begin() as connection:
        connection.execute(
            update(TenantSchedule)
            .where(TenantSchedule.tenant_id == tenant_id)
            .values(cron=cron, updated_at=now)
        )


def claim_fire(
    engine: Engine, tenant_id: str, fire_at: datetime, *, by: str, now: datetime
) -> bool:
    """Claim one fire; False if somebody already did."""
    try:
        with Session(engine) as session, session.begin():
            session.add(
                ScheduleFire(tenant_id=tenant_id, fire_at=fire_at, claimed_at=now, claimed_by=by)
            )
    except IntegrityError:
        return False
    return True


def attach_run(engine: Engine, tenant_id: str, fire_at: datetime, run_id: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(ScheduleFire)
            .where(ScheduleFire.tenant_id == tenant_id, ScheduleFire.fire_at == fire_at)
            .values(run_id=run_id)
        )


def unclaim_fire(engine: Engine, tenant_id: str, fire_at: datetime) -> None:
    """Give a fire back when its run could not start, so a later tick tries again."""
    with engine.begin() as connection:
        connection.execute(
            delete(ScheduleFire).where(
                ScheduleFire.tenant_id == tenant_id, ScheduleFire.fire_at == fire_at
            )
        )


def last_fire(engine: Engine, tenant_id: str) -> datetime | None:
    query = select(func.max(ScheduleFire.fire_at)).where(ScheduleFire.tenant_id == tenant_id)
    with Session(engine) as session:
        found = session.execute(query).scalar_one_or_none()
    if found is not None and found.tzinfo is None:  # func.max loses the column type
        from datetime import UTC

        found = found.replace(tzinfo=UTC)
    return found


def count_fires(engine: Engine, tenant_id: str) -> int:
    query = select(func.count()).where(ScheduleFire.tenant_id == tenant_id)
    with Session(engine) as session:
        return int(session.execute(query).scalar_one())


def last_run_created(engine: Engine, tenant_id: str) -> datetime | None:
    """When the tenant's latest run was created (the cool-down counts from it)."""
    query = (
        select(PipelineRun.created_at)
        .where(PipelineRun.tenant_id == tenant_id)
        .order_by(PipelineRun.created_at.desc())
        .limit(1)
    )
    with Session(engine) as session:
        return session.execute(query).scalar_one_or_none()


def known_tenants(engine: Engine, *, always: tuple[str, ...] = ()) -> list[str]:
    """Every tenant the app knows of: keys, runs, models, schedules (and ``always``)."""
    query = union(
        select(ApiKey.tenant_id),
        select(PipelineRun.tenant_id),
        select(ModelVersion.tenant_id),
        select(TenantSchedule.tenant_id),
    )
    with Session(engine) as session:
        found = {str(tenant) for tenant in session.execute(query).scalars()}
    return sorted(found | set(always))
