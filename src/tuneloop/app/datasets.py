"""Dataset version use cases: a page of them, one by hash prefix, the newest few.

``/datasets``, ``tuneloop datasets`` and the dashboard call these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from tuneloop.store import datasets as repo
from tuneloop.store.models import DatasetVersion

__all__ = ["DatasetPage", "DatasetVersion", "dataset_page", "get_dataset", "list_datasets"]


@dataclass(frozen=True)
class DatasetPage:
    items: Sequence[DatasetVersion]
    total: int
    limit: int
    offset: int


def dataset_page(engine: Engine, tenant_id: str, *, limit: int, offset: int) -> DatasetPage:
    """One page of the tenant's versions, newest first, with the total it belongs to (one
    transaction)."""
    items, total = repo.datasets_page(engine, tenant_id, limit=limit, offset=offset)
    return DatasetPage(items, total, limit, offset)


def list_datasets(engine: Engine, tenant_id: str, *, limit: int) -> Sequence[DatasetVersion]:
    """The newest ``limit`` versions."""
    return repo.list_datasets(engine, tenant_id, limit=limit)


def get_dataset(engine: Engine, tenant_id: str, version: str) -> DatasetVersion:
    """One version by its hash or an unambiguous prefix; NotFoundError outside the tenant."""
    return repo.get_dataset(engine, tenant_id, version)
