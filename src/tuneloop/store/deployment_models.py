"""The deployments tables: one row per rollout of a model version, and its audit trail.

Every row carries ``tenant_id`` and every query is scoped by it. ``row_version`` is the
compare-and-set counter that makes concurrent rollout ticks safe: a transition is written
only if the row is still the one the tick read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tuneloop.store.base import Base
from tuneloop.store.types import utcnow

DEPLOYMENT_STATUSES = ("rolling_out", "promoting", "completed", "rolling_back", "rolled_back")
STRATEGIES = ("immediate", "gradual_rollout", "canary")
ACTIVE_SQL = "status IN ('rolling_out', 'promoting', 'rolling_back')"


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Deployment(Base):
    """A model version being rolled out (or done): traffic share, step, plan, last checks."""

    __tablename__ = "deployments"
    __table_args__ = (
        CheckConstraint(_one_of("status", DEPLOYMENT_STATUSES), name="status"),
        CheckConstraint(_one_of("strategy", STRATEGIES), name="strategy"),
        CheckConstraint("traffic >= 0 AND traffic <= 1", name="traffic"),
        # At most one active deployment per tenant, enforced by the database itself.
        Index(
            "uq_deployments_active",
            "tenant_id",
            unique=True,
            postgresql_where=text(ACTIVE_SQL),
            sqlite_where=text(ACTIVE_SQL),
        ),
        Index("ix_deployments_tenant_created", "tenant_id", "created_at"),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(256))
    version: Mapped[str] = mapped_column(String(64))
    previous_model_id: Mapped[str] = mapped_column(String(256))
    previous_version: Mapped[str] = mapped_column(String(64))
    ab_test_id: Mapped[str | None] = mapped_column(String(64))
    strategy: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    traffic: Mapped[float] = mapped_column(Float)
    step: Mapped[int] = mapped_column(Integer)
    rollout_config: Mapped[dict[str, Any]]
    guardrails: Mapped[dict[str, Any]]
    rollback_plan: Mapped[dict[str, Any]]
    safety_checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    last_checks: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    last_reasons: Mapped[list[str] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)  # why it was rolled back
    row_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    step_started_at: Mapped[datetime]
    last_tick_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class DeploymentEvent(Base):
    """The audit trail: one row per transition (deployed, advanced, held, rolled back...)."""

    __tablename__ = "deployment_events"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "deployment_id"],
            ["deployments.tenant_id", "deployments.id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)  # the row_version it wrote
    kind: Mapped[str] = mapped_column(String(32))
    from_traffic: Mapped[float] = mapped_column(Float)
    to_traffic: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    details: Mapped[dict[str, Any] | None]
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]


__all__ = ["DEPLOYMENT_STATUSES", "STRATEGIES", "Deployment", "DeploymentEvent"]
