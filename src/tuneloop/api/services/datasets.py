"""One page of a tenant's dataset versions, with the total the page belongs to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from tuneloop.store.datasets import count_datasets, list_datasets
from tuneloop.store.models import DatasetVersion


@dataclass(frozen=True)
class DatasetPage:
    items: Sequence[DatasetVersion]
    total: int
    limit: int
    offset: int


def dataset_page(engine: Engine, tenant_id: str, *, limit: int, offset: int) -> DatasetPage:
    items = list_datasets(engine, tenant_id, limit=limit, offset=offset)
    return DatasetPage(items, count_datasets(engine, tenant_id), limit, offset)
