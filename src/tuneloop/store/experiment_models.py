"""The experiments tables: A/B tests and the append-only outcome events they are judged on.

Every row carries ``tenant_id`` and every query is scoped by it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    Index,
    Integer,
    String,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tuneloop.store.base import Base
from tuneloop.store.types import utcnow

EXPERIMENT_STATUSES = ("draft", "running", "stopped", "decided")


def opaque_id(length: int) -> String:
    """An id compared byte by byte: PostgreSQL's "C" collation makes its btree cheaper
    (ids are opaque, so byte order is the right order); SQLite compares bytes already."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


EVENT_KINDS = ("exposure", "outcome", "generation")
GENERATION_SQL = "kind = 'generation'"


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Experiment(Base):
    """An A/B test: a baseline and candidates (``arms``) with weights, criteria, a decision."""

    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint(_one_of("status", EXPERIMENT_STATUSES), name="status"),
        CheckConstraint("traffic_split >= 0 AND traffic_split <= 1", name="traffic_split"),
        Index("ix_experiments_tenant_status", "tenant_id", "status", "created_at"),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    baseline_model_id: Mapped[str] = mapped_column(String(256))
    baseline_version: Mapped[str] = mapped_column(String(64))
    candidate_model_id: Mapped[str] = mapped_column(String(256))
    candidate_version: Mapped[str] = mapped_column(String(64))
    traffic_split: Mapped[float] = mapped_column(Float)  # share of all non-baseline arms
    arms: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{name, model_id, version, weight}]
    duration_hours: Mapped[int] = mapped_column(Integer)
    success_criteria: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    decision: Mapped[str | None] = mapped_column(String(16))
    decision_reasons: Mapped[list[str] | None] = mapped_column(JSON)
    decided_at: Mapped[datetime | None]


class OutcomeEvent(Base):
    """One exposure, generation or outcome; append-only, keyed by the client's idempotency key.

    The natural key is the primary key (no surrogate id): one index fewer to maintain on
    the hottest insert path, and a repeated event is refused by the key itself.
    """

    __tablename__ = "outcome_events"
    __table_args__ = (
        CheckConstraint(_one_of("kind", EVENT_KINDS), name="kind"),
        # The aggregates read one experiment of one tenant, then group by (arm, unit) in a
        # hash; a two-column index stays small (its keys repeat, so btree deduplication
        # packs them) and costs almost nothing per insert, unlike one ending in unit_id.
        Index("ix_outcome_events_experiment", "tenant_id", "experiment_key"),
        # Outcomes that name only a generation inherit its unit, model, experiment and arm.
        Index(
            "ix_outcome_events_generation",
            "tenant_id",
            "generation_id",
            postgresql_where=text(GENERATION_SQL),
            sqlite_where=text(GENERATION_SQL),
        ),
        # Analysis reads rollups of whole hours; the events of a partial hour at a window's
        # edge (an earlier look, a unit's first exposure) are read per unit through this.
        Index("ix_outcome_events_unit_ts", "tenant_id", "unit_id", "ts"),
    )

    tenant_id: Mapped[str] = mapped_column(opaque_id(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(opaque_id(128), primary_key=True)
    experiment_key: Mapped[str | None] = mapped_column(opaque_id(64))
    unit_id: Mapped[str] = mapped_column(String(128))
    arm: Mapped[str | None] = mapped_column(String(64))
    model_id: Mapped[str | None] = mapped_column(String(256))
    post_id: Mapped[str | None] = mapped_column(String(128))
    generation_id: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    engagement: Mapped[float | None] = mapped_column(Float)
    tokens: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    ts: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = ["EVENT_KINDS", "EXPERIMENT_STATUSES", "Experiment", "OutcomeEvent"]
