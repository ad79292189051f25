"""Post use cases: ingest a batch (each item validated alone), write posts, count them.

``/posts``, ``tuneloop posts import``, ``tuneloop seed`` and the demo call these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine

from tuneloop.errors import InvalidInputError, Problem
from tuneloop.posts.schema import PostIn
from tuneloop.store import posts as repo
from tuneloop.store.models import Post

__all__ = ["Post", "count_posts", "ingest_posts", "list_posts", "write_posts"]


@dataclass(frozen=True)
class ItemError:
    loc: list[str | int]
    msg: str
    type: str


@dataclass(frozen=True)
class RejectedItem:
    index: int
    id: str | None
    errors: list[ItemError]


@dataclass(frozen=True)
class IngestReport:
    accepted: list[str]
    rejected: list[RejectedItem]


def ingest_posts(
    engine: Engine, tenant_id: str, items: Sequence[Any], *, max_batch: int
) -> IngestReport:
    """Upsert the valid items of a batch for ``tenant_id``; the invalid ones come back with why."""
    if len(items) > max_batch:
        raise InvalidInputError(
            f"a batch holds at most {max_batch} posts; this one has {len(items)}",
            [Problem("body.posts", f"at most {max_batch} items")],
        )
    valid: list[PostIn] = []
    rejected: list[RejectedItem] = []
    for index, item in enumerate(items):
        try:
            valid.append(PostIn.model_validate(item))
        except ValidationError as exc:
            rejected.append(RejectedItem(index, _id_of(item), _errors(exc, index)))
    if valid:
        repo.upsert_posts(engine, tenant_id, valid)
    return IngestReport(accepted=[post.id for post in valid], rejected=rejected)


def write_posts(engine: Engine, tenant_id: str, posts: Iterable[PostIn]) -> int:
    """Insert or update already valid posts by (tenant, id); how many rows were written."""
    return repo.upsert_posts(engine, tenant_id, posts)


def count_posts(engine: Engine, tenant_id: str) -> int:
    return repo.count_posts(engine, tenant_id)


def list_posts(engine: Engine, tenant_id: str, *, limit: int = 50, offset: int = 0) -> list[Post]:
    """The tenant's newest posts first, each with the model version that wrote it."""
    return repo.list_posts(engine, tenant_id, limit=limit, offset=offset)


def _errors(exc: ValidationError, index: int) -> list[ItemError]:
    return [
        ItemError(loc=["body", "posts", index, *error["loc"]], msg=error["msg"], type=error["type"])
        for error in exc.errors(include_url=False, include_input=False)
    ]


def _id_of(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    value = item.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value[:128] if isinstance(value, str) and value else None
