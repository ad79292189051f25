"""Model versions as tuneloop knows them (MLflow's registry holds the artifacts and aliases)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Select, func, select, update
from sqlalchemy.orm import Session

from tuneloop.errors import NotFoundError
from tuneloop.store.db import read_page
from tuneloop.store.pipeline_models import HoldoutReference, ModelVersion


def record_model_version(
    engine: Engine, tenant_id: str, *, model_id: str, version: str, **fields: Any
) -> ModelVersion:
    """Insert or refresh a version (a retried register step records the same version)."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = session.get(ModelVersion, (tenant_id, model_id, version))
        if row is None:
            row = ModelVersion(tenant_id=tenant_id, model_id=model_id, version=version, **fields)
            session.add(row)
        else:
            for key, value in fields.items():
                setattr(row, key, value)
    return row


def _newest_versions(tenant_id: str) -> Select[ModelVersion]:
    return (
        select(ModelVersion)
        .where(ModelVersion.tenant_id == tenant_id)
        .order_by(ModelVersion.created_at.desc())
    )


def list_model_versions(
    engine: Engine, tenant_id: str, *, limit: int = 50, offset: int = 0
) -> Sequence[ModelVersion]:
    statement = _newest_versions(tenant_id).limit(limit).offset(offset)
    with Session(engine, expire_on_commit=False) as session:
        return session.scalars(statement).all()


def model_versions_page(
    engine: Engine, tenant_id: str, *, limit: int = 50, offset: int = 0
) -> tuple[Sequence[ModelVersion], int]:
    """A page of the tenant's versions, newest first, and their total: one transaction."""
    count = select(func.count()).where(ModelVersion.tenant_id == tenant_id)
    return read_page(engine, _newest_versions(tenant_id).limit(limit).offset(offset), count)


def count_model_versions(engine: Engine, tenant_id: str) -> int:
    statement = (
        select(func.count()).select_from(ModelVersion).where(ModelVersion.tenant_id == tenant_id)
    )
    with Session(engine) as session:
        return int(session.scalar(statement) or 0)


def get_model_version(engine: Engine, tenant_id: str, model_id: str, version: str) -> ModelVersion:
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(ModelVersion, (tenant_id, model_id, version))
    if row is None:
        raise NotFoundError(f"model {model_id} version {version} not found")
    return row


def version_registered(engine: Engine, tenant_id: str, model_id: str, version: str) -> bool:
    with Session(engine) as session:
        return session.get(ModelVersion, (tenant_id, model_id, version)) is not None


def model_registered_by_others(engine: Engine, tenant_id: str, model_id: str) -> bool:
    """Whether another tenant has any version of ``model_id`` (an ownership check)."""
    statement = (
        select(ModelVersion.tenant_id)
        .where(ModelVersion.model_id == model_id, ModelVersion.tenant_id != tenant_id)
        .limit(1)
    )
    with Session(engine) as session:
        return session.scalars(statement).first() is not None


def champion_of(engine: Engine, tenant_id: str) -> ModelVersion | None:
    statement = select(ModelVersion).where(
        ModelVersion.tenant_id == tenant_id, ModelVersion.status == "champion"
    )
    with Session(engine, expire_on_commit=False) as session:
        return session.scalars(statement).first()


def set_champion(engine: Engine, tenant_id: str, model_id: str, version: str) -> None:
    """Mark one version champion; the previous champion becomes archived."""
    with Session(engine) as session, session.begin():
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.tenant_id == tenant_id, ModelVersion.status == "champion")
            .values(status="archived")
        )
        result = session.execute(
            update(ModelVersion)
            .where(
                ModelVersion.tenant_id == tenant_id,
                ModelVersion.model_id == model_id,
                ModelVersion.version == version,
            )
            .values(status="champion")
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            raise NotFoundError(f"model {model_id} version {version} not found")
        # The first champion is the permanent holdout's reference, pinned once for good.
        if session.get(HoldoutReference, tenant_id) is None:
            session.add(HoldoutReference(tenant_id=tenant_id, model_id=model_id, version=version))


def holdout_reference(engine: Engine, tenant_id: str) -> tuple[str, str] | None:
    """The tenant's first champion ``(model_id, version)``, or None before it has one."""
    with Session(engine) as session:
        found = session.get(HoldoutReference, tenant_id)
        return (found.model_id, found.version) if found is not None else None


def set_version_status(
    engine: Engine, tenant_id: str, model_id: str, version: str, status: str
) -> None:
    """Record what became of a version (e.g. ``rolled_back``); no-op for an unknown one."""
    with Session(engine) as session, session.begin():
        session.execute(
            update(ModelVersion)
            .where(
                ModelVersion.tenant_id == tenant_id,
                ModelVersion.model_id == model_id,
                ModelVersion.version == version,
            )
            .values(status=status)
        )


def tenants_with_champion(engine: Engine) -> list[str]:
    """Every tenant that has a champion (serving warms their routes)."""
    query = select(ModelVersion.tenant_id).where(ModelVersion.status == "champion").distinct()
    with Session(engine) as session:
        return list(session.scalars(query).all())


def versions_of(engine: Engine, tenant_id: str, model_id: str) -> list[str]:
    """The registered versions of ``model_id`` in the tenant, in numeric order (2 before 10)."""
    query = select(ModelVersion.version).where(
        ModelVersion.tenant_id == tenant_id, ModelVersion.model_id == model_id
    )
    with Session(engine) as session:
        return sorted(session.scalars(query), key=lambda v: (len(v), v))
