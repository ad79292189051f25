"""Collection watermarks repository: the newest post a collection saw, per tenant and scope."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tuneloop.store.models import CollectionWatermark
from tuneloop.store.types import utcnow


def scope_of(persona_id: str | None) -> str:
    return "all" if persona_id is None else f"persona:{persona_id}"


def read_watermark(
    engine: Engine, tenant_id: str, persona_id: str | None = None
) -> CollectionWatermark | None:
    statement = select(CollectionWatermark).where(
        CollectionWatermark.tenant_id == tenant_id,
        CollectionWatermark.scope == scope_of(persona_id),
    )
    with Session(engine, expire_on_commit=False) as session:
        return session.scalars(statement).one_or_none()


def advance_watermark(
    session: Session,
    tenant_id: str,
    *,
    persona_id: str | None,
    last_ts: datetime | None,
    records: int,
    dataset_id: str | None,
) -> None:
    """Move the watermark forward (never back) inside the caller's transaction."""
    mark = session.get(CollectionWatermark, (tenant_id, scope_of(persona_id)))
    if mark is None:
        mark = CollectionWatermark(tenant_id=tenant_id, scope=scope_of(persona_id))
        session.add(mark)
    if last_ts is not None and (mark.last_ts is None or last_ts > mark.last_ts):
        mark.last_ts = last_ts
    mark.collected_at = utcnow()
    mark.records = records
    mark.dataset_id = dataset_id
