"""Tables of the worker: the leader lease, claimed schedule fires, per-tenant schedules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from tuneloop.store.base import Base


class WorkerLease(Base):
    """Who leads the workers until ``expires_at`` (one row per lease name)."""

    __tablename__ = "worker_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime]
    renewed_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_tick_at: Mapped[datetime | None]
    last_tick: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ScheduleFire(Base):
    """A schedule fire a worker claimed: the primary key makes each fire start one run."""

    __tablename__ = "schedule_fires"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    fire_at: Mapped[datetime] = mapped_column(primary_key=True)
    claimed_at: Mapped[datetime]
    claimed_by: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[str | None] = mapped_column(String(64))


class TenantSchedule(Base):
    """A tenant's own cron (None: the setting), and since when its fires count."""

    __tablename__ = "tenant_schedules"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    cron: Mapped[str | None] = mapped_column(String(120))
    anchor_at: Mapped[datetime]
    updated_at: Mapped[datetime]


__all__ = ["ScheduleFire", "TenantSchedule", "WorkerLease"]
