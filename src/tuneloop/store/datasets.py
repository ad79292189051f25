"""Dataset versions repository (tenant-scoped)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, Select, func, select
from sqlalchemy.orm import Session

from tuneloop.errors import InvalidInputError, NotFoundError
from tuneloop.store.db import read_page
from tuneloop.store.models import DatasetVersion
from tuneloop.store.watermarks import advance_watermark


def save_dataset(session: Session, version: DatasetVersion) -> DatasetVersion:
    """Record a version; the same content hash recorded twice is the same version."""
    existing = session.get(DatasetVersion, (version.tenant_id, version.id))
    if existing is not None:
        return existing
    session.add(version)
    return version


def _newest_first(tenant_id: str) -> Select[DatasetVersion]:
    return (
        select(DatasetVersion)
        .where(DatasetVersion.tenant_id == tenant_id)
        .order_by(DatasetVersion.created_at.desc(), DatasetVersion.id)
    )


def list_datasets(
    engine: Engine, tenant_id: str, *, limit: int = 50, offset: int = 0
) -> Sequence[DatasetVersion]:
    with Session(engine, expire_on_commit=False) as session:
        return session.scalars(_newest_first(tenant_id).limit(limit).offset(offset)).all()


def datasets_page(
    engine: Engine, tenant_id: str, *, limit: int = 50, offset: int = 0
) -> tuple[Sequence[DatasetVersion], int]:
    """A page of the tenant's versions, newest first, and their total: one transaction."""
    count = select(func.count()).where(DatasetVersion.tenant_id == tenant_id)
    return read_page(engine, _newest_first(tenant_id).limit(limit).offset(offset), count)


def get_dataset(engine: Engine, tenant_id: str, version: str) -> DatasetVersion:
    """Find a version by its hash or an unambiguous prefix of it (>= 6 characters)."""
    if len(version) < 6:
        raise InvalidInputError("give at least 6 characters of the dataset version")
    statement = select(DatasetVersion).where(
        DatasetVersion.tenant_id == tenant_id,
        DatasetVersion.id.startswith(version, autoescape=True),
    )
    with Session(engine, expire_on_commit=False) as session:
        matches = session.scalars(statement.limit(2)).all()
    if not matches:
        raise NotFoundError(f"dataset version {version!r} not found for tenant {tenant_id!r}")
    if len(matches) > 1:
        raise InvalidInputError(f"dataset version prefix {version!r} is ambiguous")
    return matches[0]


def record_dataset(
    engine: Engine,
    tenant_id: str,
    version: DatasetVersion,
    *,
    persona_id: str | None,
    last_ts: datetime | None,
    records: int,
) -> DatasetVersion:
    """Record a built version and move the collection watermark, in one transaction."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        saved = save_dataset(session, version)
        advance_watermark(
            session,
            tenant_id,
            persona_id=persona_id,
            last_ts=last_ts,
            records=records,
            dataset_id=saved.id,
        )
    return saved
