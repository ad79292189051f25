"""The embedded event stream's tables: entries waiting for the consumer, and dead letters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tuneloop.store.base import Base

# SQLite gives a rowid alias only to INTEGER PRIMARY KEY; PostgreSQL wants 64 bits.
_ID = BigInteger().with_variant(Integer(), "sqlite")


class StreamEntry(Base):
    """An accepted event not yet acknowledged: claimed by a consumer, delivered N times."""

    __tablename__ = "event_stream"
    # No index on claimed_at: a claim then changes no indexed column, so PostgreSQL updates
    # the row in place (HOT); the claim scans in id order and stops after a batch anyway.

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)  # the event's JSON as the client sent it
    appended_at: Mapped[datetime]
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None]


class DeadLetterRow(Base):
    """An entry given up on, with its category, source, error and attempts."""

    __tablename__ = "event_dead_letters"
    __table_args__ = (Index("ix_event_dead_letters_category", "category", "id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    category: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(128))
    entry_id: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]


__all__ = ["DeadLetterRow", "StreamEntry"]
