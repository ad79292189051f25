"""``/datasets``: the tenant's dataset versions, a page at a time or one by hash prefix."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from tuneloop.api.auth import Viewer
from tuneloop.api.resources import ResourcesDep
from tuneloop.api.schemas.common import AUTHENTICATED_RESPONSES, PageLimit, PageOffset
from tuneloop.api.schemas.datasets import DatasetDetail, DatasetPageOut
from tuneloop.app.datasets import dataset_page, get_dataset

router = APIRouter(prefix="/datasets", tags=["datasets"], responses=AUTHENTICATED_RESPONSES)


@router.get("", summary="List dataset versions, newest first")
def list_dataset_versions(
    principal: Viewer,
    resources: ResourcesDep,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> DatasetPageOut:
    page = dataset_page(resources.engine, principal.tenant_id, limit=limit, offset=offset)
    return DatasetPageOut.of(page)


@router.get("/{dataset_id}", summary="One dataset version with its manifest")
def get_dataset_version(
    principal: Viewer,
    resources: ResourcesDep,
    dataset_id: Annotated[
        str,
        Path(
            min_length=6,
            max_length=64,
            pattern=r"^[0-9a-f]+$",
            description="The version's content hash, or an unambiguous prefix (>= 6 hex chars).",
        ),
    ],
) -> DatasetDetail:
    return DatasetDetail.of(get_dataset(resources.engine, principal.tenant_id, dataset_id))
