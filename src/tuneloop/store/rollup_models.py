"""The per-unit rollups of outcome events that analysis reads instead of the raw events.

One row holds what one unit did in one hour for one (experiment, arm, model): counts and
sums, enough for every per-unit metric (means, ratios, CUPED pre-periods) and for windows
made of whole hours. docs/decisions/0024-unit-rollups.md says why this shape.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tuneloop.store.base import Base
from tuneloop.store.experiment_models import opaque_id

NONE = ""  # a key column's "no experiment / no arm / no model" (primary keys are not null)


class UnitRollup(Base):
    """Sums of one unit's events in one hour, maintained in the transaction that inserts them."""

    __tablename__ = "unit_rollups"
    __table_args__ = (
        # Rollout checks and pre-periods read a tenant's rows across experiments by unit.
        Index("ix_unit_rollups_unit", "tenant_id", "unit_id", "bucket"),
    )

    tenant_id: Mapped[str] = mapped_column(opaque_id(64), primary_key=True)
    experiment_key: Mapped[str] = mapped_column(opaque_id(64), primary_key=True)
    arm: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)  # the hour the events fell in
    exposures: Mapped[int] = mapped_column(Integer, default=0)
    first_exposure_at: Mapped[datetime | None]
    outcomes: Mapped[int] = mapped_column(Integer, default=0)
    engaged: Mapped[int] = mapped_column(Integer, default=0)  # outcomes with an engagement
    engagement_sum: Mapped[float] = mapped_column(Float, default=0.0)
    generations: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    latency_n: Mapped[int] = mapped_column(Integer, default=0)
    latency_sum: Mapped[float] = mapped_column(Float, default=0.0)
    tokens_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_n: Mapped[int] = mapped_column(Integer, default=0)  # generations with a cost
    cost_sum: Mapped[float] = mapped_column(Float, default=0.0)


SUMMED = (
    "exposures",
    "outcomes",
    "engaged",
    "engagement_sum",
    "generations",
    "errors",
    "latency_n",
    "latency_sum",
    "tokens_sum",
    "cost_n",
    "cost_sum",
)
KEY = ("tenant_id", "experiment_key", "arm", "model_id", "unit_id", "bucket")

__all__ = ["KEY", "NONE", "SUMMED", "UnitRollup"]
