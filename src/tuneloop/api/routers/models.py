"""``/models``: the tenant's registered model versions, a page at a time or one by version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from tuneloop.api.auth import Viewer
from tuneloop.api.resources import ResourcesDep
from tuneloop.api.schemas.common import AUTHENTICATED_RESPONSES, PageLimit, PageOffset
from tuneloop.api.schemas.fine_tuning import ModelPageOut, ModelVersionDetailOut
from tuneloop.app.models import get_model_version
from tuneloop.app.runs import model_page

router = APIRouter(prefix="/models", tags=["models"], responses=AUTHENTICATED_RESPONSES)


@router.get("", summary="List model versions, newest first")
def list_models(
    principal: Viewer,
    resources: ResourcesDep,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> ModelPageOut:
    page = model_page(resources.container, tenant=principal.tenant_id, limit=limit, offset=offset)
    return ModelPageOut.of(page)


@router.get("/{model_id}/{version}", summary="One model version")
def get_model(
    principal: Viewer,
    resources: ResourcesDep,
    model_id: Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")],
    version: Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")],
) -> ModelVersionDetailOut:
    row = get_model_version(resources.engine, principal.tenant_id, model_id, version)
    return ModelVersionDetailOut.model_validate(row)
