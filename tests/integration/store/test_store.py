"""Migrations and the posts repository on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from tuneloop.posts.schema import PostIn
from tuneloop.store.migrate import current_revisions, downgrade, head_revisions, upgrade
from tuneloop.store.models import Post
from tuneloop.store.posts import count_posts, upsert_posts

TS = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make(i: int, rate: float | None = 0.1, hook: str = "Hook") -> PostIn:
    return PostIn(id=f"p{i}", hook=hook, body="Body", engagement_rate=rate, ts=TS)


def test_migrations_reach_every_head_and_go_back_down(engine: Engine) -> None:
    assert current_revisions(engine) == head_revisions()
    tables = set(inspect(engine).get_table_names())
    assert {"posts", "dataset_versions", "collection_watermarks"} <= tables
    downgrade(engine, "base")
    assert "posts" not in set(inspect(engine).get_table_names())
    upgrade(engine)
    assert current_revisions(engine) == head_revisions()


def test_upsert_is_idempotent_and_a_later_import_updates(engine: Engine) -> None:
    assert upsert_posts(engine, "acme", [make(i) for i in range(5)]) == 5
    upsert_posts(engine, "acme", [make(i) for i in range(5)])
    assert count_posts(engine, "acme") == 5
    upsert_posts(engine, "acme", [make(1, rate=0.5, hook="Better hook")])
    with Session(engine) as session:
        row = session.get(Post, ("acme", "p1"))
        assert row is not None and row.engagement_rate == 0.5 and row.hook == "Better hook"


def test_the_same_id_twice_in_one_batch_keeps_the_last(engine: Engine) -> None:
    upsert_posts(engine, "acme", [make(1, rate=0.1), make(1, rate=0.2)])
    with Session(engine) as session:
        assert session.scalars(select(Post.engagement_rate)).one() == 0.2


def test_tenants_are_separate(engine: Engine) -> None:
    upsert_posts(engine, "acme", [make(1)])
    upsert_posts(engine, "globex", [make(1), make(2)])
    assert count_posts(engine, "acme") == 1
    assert count_posts(engine, "globex") == 2


def test_timestamps_come_back_timezone_aware(engine: Engine) -> None:
    offset = datetime(2026, 11, 1, 14, 0, tzinfo=UTC) + timedelta(hours=0)
    upsert_posts(engine, "acme", [PostIn(id="x", hook="h", body="b", ts=offset)])
    with Session(engine) as session:
        row = session.get(Post, ("acme", "x"))
        assert row is not None and row.ts == offset and row.ts.tzinfo is not None
        assert row.created_at.tzinfo is not None


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(Exception, match="naive datetime"):
        session.add(Post(tenant_id="t", id="n", hook="h", body="b", ts=datetime(2026, 1, 1)))
        session.flush()
