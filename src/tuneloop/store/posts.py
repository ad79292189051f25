"""Posts repository: idempotent batch upserts and tenant-scoped counts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tuneloop.posts.schema import PostIn
from tuneloop.store.events import generations_by_id
from tuneloop.store.models import Post
from tuneloop.store.types import utcnow

UPDATABLE = (
    "persona_id",
    "hook",
    "body",
    "engagement_rate",
    "impressions",
    "engagements",
    "tokens_used",
    "model_id",
    "ts",
)
# A re-import without a model reference keeps the origin already known.
KEEP_KNOWN = ("source_model", "source_version", "generation_id")


def upsert_posts(
    engine: Engine, tenant_id: str, posts: Iterable[PostIn], *, batch_size: int = 1000
) -> int:
    """Insert or update posts by (tenant, id); re-importing the same rows changes nothing.

    A later import of a known post updates it: engagement keeps arriving after a post is
    written, and the newest export is the truth.
    """
    written = 0
    for batch in _batches(posts, batch_size):
        rows = _with_sources(engine, tenant_id, [_row(tenant_id, p) for p in _last_per_id(batch)])
        with engine.begin() as connection:
            connection.execute(_upsert_statement(engine.dialect.name), rows)
        written += len(rows)
    return written


def _upsert_statement(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Post)
    known = {
        name: func.coalesce(statement.excluded[name], Post.__table__.c[name]) for name in KEEP_KNOWN
    }
    return statement.on_conflict_do_update(
        index_elements=[Post.tenant_id, Post.id],
        set_={name: statement.excluded[name] for name in UPDATABLE} | known,
    )


def _with_sources(
    engine: Engine, tenant_id: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Posts that name a generation (``X-Tuneloop-Generation-Id`` of the proxy's answer) and
    no source take the model version that served it, as recorded in its generation event."""
    wanted = {r["generation_id"] for r in rows if r["generation_id"] and not r["source_model"]}
    if not wanted:
        return rows
    labels = {
        generation_id: link.model_id
        for generation_id, link in generations_by_id(engine, tenant_id, wanted).items()
        if link.model_id
    }
    for row in rows:
        label = labels.get(row["generation_id"]) if not row["source_model"] else None
        model, at, version = (label or "").rpartition("@")
        if at and model and version:
            row["source_model"], row["source_version"] = model[:200], version[:32]
            row["model_id"] = row["model_id"] or label
    return rows


def _row(tenant_id: str, post: PostIn) -> dict[str, Any]:
    row = post.model_dump()
    row["tenant_id"] = tenant_id
    row["created_at"] = utcnow()
    return row


def _last_per_id(batch: Sequence[PostIn]) -> list[PostIn]:
    # One statement cannot touch a row twice (PostgreSQL refuses); the later line wins.
    return list({post.id: post for post in batch}.values())


def _batches(items: Iterable[PostIn], size: int) -> Iterator[list[PostIn]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def count_posts(engine: Engine, tenant_id: str) -> int:
    with engine.connect() as connection:
        query = select(func.count()).select_from(Post).where(Post.tenant_id == tenant_id)
        return int(connection.execute(query).scalar_one())


def iter_hook_body(
    engine: Engine, tenant_id: str, *, chunk_size: int = 5000
) -> Iterator[tuple[str, str]]:
    """Every post's (hook, body), streamed: the corpus the built-in tiny base pre-trains on."""
    statement = select(Post.hook, Post.body).where(Post.tenant_id == tenant_id).order_by(Post.id)
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=chunk_size).execute(
            statement
        )
        yield from result.tuples()


def list_posts(engine: Engine, tenant_id: str, *, limit: int = 50, offset: int = 0) -> list[Post]:
    """The tenant's newest posts first (what ``GET /posts`` and ``tuneloop posts list`` show)."""
    statement = (
        select(Post)
        .where(Post.tenant_id == tenant_id)
        .order_by(Post.ts.desc(), Post.id)
        .limit(limit)
        .offset(offset)
    )
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(statement))
