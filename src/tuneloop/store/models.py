"""The foundation's tables: posts, dataset versions, collection watermarks.

Every table in tuneloop carries ``tenant_id`` and every query is scoped by it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tuneloop.store.base import Base
from tuneloop.store.types import utcnow


class Post(Base):
    """A post the content generator wrote, with the engagement it earned."""

    __tablename__ = "posts"
    __table_args__ = (
        # The collector's query: tenant, engagement >= threshold ordered desc, recent ts.
        Index("ix_posts_collect", "tenant_id", "engagement_rate", "ts"),
        Index("ix_posts_tenant_ts", "tenant_id", "ts"),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    persona_id: Mapped[str | None] = mapped_column(String(128))
    hook: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    engagement_rate: Mapped[float | None] = mapped_column(Float)
    impressions: Mapped[int | None] = mapped_column(Integer)
    engagements: Mapped[int | None] = mapped_column(Integer)
    tokens_used: Mapped[int | None] = mapped_column(Integer)
    model_id: Mapped[str | None] = mapped_column(String(256))
    # Which model version wrote the post (NULL: unknown origin, e.g. written by a person):
    # the dataset's share per source version and its cap read these.
    source_model: Mapped[str | None] = mapped_column(String(200))
    source_version: Mapped[str | None] = mapped_column(String(32))
    generation_id: Mapped[str | None] = mapped_column(String(128))
    ts: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DatasetVersion(Base):
    """A built, validated dataset; its content hash is its version."""

    __tablename__ = "dataset_versions"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # content hash (hex)
    persona_id: Mapped[str | None] = mapped_column(String(128))
    path: Mapped[str] = mapped_column(Text)
    source_records: Mapped[int] = mapped_column(Integer)
    hook_examples: Mapped[int] = mapped_column(Integer)
    body_examples: Mapped[int] = mapped_column(Integer)
    train_examples: Mapped[int] = mapped_column(Integer)
    validation_examples: Mapped[int] = mapped_column(Integer)
    total_tokens: Mapped[int] = mapped_column(Integer)
    manifest: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CollectionWatermark(Base):
    """What the last collection saw, so the next can count what is new since."""

    __tablename__ = "collection_watermarks"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(160), primary_key=True)  # "all" or "persona:<id>"
    last_ts: Mapped[datetime | None]
    collected_at: Mapped[datetime]
    records: Mapped[int] = mapped_column(Integer)
    dataset_id: Mapped[str | None] = mapped_column(String(64))


__all__ = ["Base", "CollectionWatermark", "DatasetVersion", "Post"]
