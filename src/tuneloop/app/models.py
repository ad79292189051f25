"""Model version use cases: list them, look at one, the champion, and the first champion.

``/models``, ``tuneloop models`` and the dashboard call these; later champions come only
from a rollout reaching 100 % (``app.deployments``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from tuneloop.pipeline.promotion import promote_first_champion
from tuneloop.store import models_registry as repo
from tuneloop.store.pipeline_models import ModelVersion
from tuneloop.wiring import Container

__all__ = ["ModelVersion", "champion", "get_model_version", "list_model_versions", "promote_first"]


def list_model_versions(engine: Engine, tenant_id: str, *, limit: int) -> Sequence[ModelVersion]:
    """The newest ``limit`` registered versions."""
    return repo.list_model_versions(engine, tenant_id, limit=limit)


def get_model_version(engine: Engine, tenant_id: str, model_id: str, version: str) -> ModelVersion:
    """One version; NotFoundError outside the tenant."""
    return repo.get_model_version(engine, tenant_id, model_id, version)


def champion(engine: Engine, tenant_id: str) -> ModelVersion | None:
    """The tenant's champion, if it has one."""
    return repo.champion_of(engine, tenant_id)


def promote_first(container: Container, tenant_id: str, *, version: str) -> ModelVersion:
    """Make ``version`` the tenant's first champion (its MLflow alias and our record)."""
    return promote_first_champion(
        container.engine,
        container.settings,
        tenant_id,
        version=version,
        tracker=container.tracker,
    )
