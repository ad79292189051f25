"""``/posts``: batched ingestion with per-item errors, and the tenant's post count."""

from __future__ import annotations

from fastapi import APIRouter

from tuneloop.api.auth import Operator, Viewer
from tuneloop.api.resources import ResourcesDep
from tuneloop.api.schemas.common import (
    AUTHENTICATED_RESPONSES,
    BODY_RESPONSES,
    PageLimit,
    PageOffset,
)
from tuneloop.api.schemas.posts import (
    PostCountOut,
    PostOut,
    PostPageOut,
    PostsBatchIn,
    PostsBatchOut,
)
from tuneloop.app.posts import count_posts, ingest_posts, list_posts

router = APIRouter(prefix="/posts", tags=["posts"], responses=AUTHENTICATED_RESPONSES)


@router.post("", responses=BODY_RESPONSES, summary="Insert or update a batch of posts")
def post_posts(batch: PostsBatchIn, principal: Operator, resources: ResourcesDep) -> PostsBatchOut:
    """Each post is validated on its own: valid ones are written (idempotent on `id`),
    invalid ones come back in `rejected` with each problem's `loc`. The answer is 200
    even when some items were rejected (a multi-status body); more items than
    `api.max_batch_size` is a 422."""
    report = ingest_posts(
        resources.engine,
        principal.tenant_id,
        batch.posts,
        max_batch=resources.settings.api.max_batch_size,
    )
    return PostsBatchOut.of(report)


@router.get("", summary="List posts, newest first, with the model version that wrote each")
def get_posts(
    principal: Viewer,
    resources: ResourcesDep,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> PostPageOut:
    rows = list_posts(resources.engine, principal.tenant_id, limit=limit, offset=offset)
    return PostPageOut(
        items=[PostOut.model_validate(row) for row in rows],
        total=count_posts(resources.engine, principal.tenant_id),
        limit=limit,
        offset=offset,
    )


@router.get("/count", summary="Count the tenant's posts")
def get_post_count(principal: Viewer, resources: ResourcesDep) -> PostCountOut:
    return PostCountOut(count=count_posts(resources.engine, principal.tenant_id))
