"""The collector's query, streaming, watermark and the collect stage, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Column, DateTime, Engine, Float, MetaData, String, Table, Text, insert

from tuneloop.collect.query import CollectQuery, Source, count_qualifying, stream_posts
from tuneloop.collect.service import collect_dataset, new_qualifying_since_last, query_from
from tuneloop.config import Settings, SourceSettings
from tuneloop.posts.schema import PostIn
from tuneloop.store.datasets import get_dataset, list_datasets
from tuneloop.store.posts import upsert_posts
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def post(i: int, rate: float | None, days_ago: float, persona: str = "coach") -> PostIn:
    return PostIn(
        id=f"p{i:03d}",
        persona_id=persona,
        hook=f"Hook {i}",
        body=f"Body {i}",
        engagement_rate=rate,
        ts=NOW - timedelta(days=days_ago),
    )


def ids(engine: Engine, query: CollectQuery, chunk_size: int = 1000) -> list[str]:
    source = Source(SourceSettings())
    return [
        p.id for chunk in stream_posts(engine, source, query, chunk_size=chunk_size) for p in chunk
    ]


def test_filters_order_and_limit(engine: Engine) -> None:
    upsert_posts(
        engine,
        "acme",
        [
            post(1, 0.10, 1),
            post(2, 0.30, 2),
            post(3, 0.05, 1),  # 3 under threshold
            post(4, 0.20, 9),  # outside 7 days
            post(5, None, 1),  # NULL engagement
            post(6, 0.07, 3, persona="chef"),
        ],
    )
    upsert_posts(engine, "globex", [post(7, 0.9, 1)])  # other tenant
    query = CollectQuery(tenant_id="acme", engagement_threshold=0.06, days_back=7, now=NOW)
    assert ids(engine, query) == ["p002", "p001", "p006"]
    assert ids(engine, CollectQuery(**{**query.__dict__, "max_records": 2})) == ["p002", "p001"]
    assert ids(engine, CollectQuery(**{**query.__dict__, "persona_id": "chef"})) == ["p006"]
    assert count_qualifying(engine, Source(SourceSettings()), query) == 3


def test_null_engagement_counts_as_zero(engine: Engine) -> None:
    upsert_posts(engine, "acme", [post(1, None, 1), post(2, 0.01, 1)])
    query = CollectQuery(tenant_id="acme", engagement_threshold=0.0, days_back=7, now=NOW)
    chunks = list(stream_posts(engine, Source(SourceSettings()), query))
    rows = [p for chunk in chunks for p in chunk]
    assert [(p.id, p.engagement_rate) for p in rows] == [("p002", 0.01), ("p001", 0.0)]


def test_rows_stream_in_chunks(engine: Engine) -> None:
    upsert_posts(engine, "acme", [post(i, 0.1 + i / 1000, 1) for i in range(25)])
    query = CollectQuery(tenant_id="acme", now=NOW)
    chunks = list(stream_posts(engine, Source(SourceSettings()), query, chunk_size=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert all(p.ts.tzinfo is not None for c in chunks for p in c)


def test_a_teams_own_table_and_column_names(engine: Engine) -> None:
    metadata = MetaData()
    content = Table(
        "team_content",
        metadata,
        Column("post_uuid", String(64), primary_key=True),
        Column("author", String(64)),
        Column("opening", Text),
        Column("text_body", Text),
        Column("er", Float),
        Column("published_at", DateTime(timezone=True)),
        Column("org", String(64)),
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(content),
            [
                {
                    "post_uuid": "u1",
                    "author": "a",
                    "opening": "H1",
                    "text_body": "B1",
                    "er": 0.2,
                    "published_at": NOW - timedelta(days=1),
                    "org": "acme",
                },
                {
                    "post_uuid": "u2",
                    "author": "a",
                    "opening": "H2",
                    "text_body": "B2",
                    "er": 0.01,
                    "published_at": NOW - timedelta(days=1),
                    "org": "acme",
                },
            ],
        )
    source = Source(
        SourceSettings(
            table="team_content",
            id_column="post_uuid",
            tenant_column="org",
            persona_column="author",
            hook_column="opening",
            body_column="text_body",
            engagement_column="er",
            ts_column="published_at",
        )
    )
    rows = [
        p for c in stream_posts(engine, source, CollectQuery(tenant_id="acme", now=NOW)) for p in c
    ]
    assert [(p.id, p.hook, p.body) for p in rows] == [("u1", "H1", "B1")]


def test_collect_stage_writes_files_records_version_and_watermark(
    engine: Engine, settings: Settings
) -> None:
    now = datetime.now(UTC)
    rows = [
        PostIn.model_construct(**r)
        for r in generate_posts(SyntheticSpec(posts=2500, seed=3), now=now)
    ]
    upsert_posts(engine, "acme", rows)
    outcome = collect_dataset(engine, settings, query_from(settings, "acme"))
    assert outcome.version is not None and outcome.result.status == "ok"
    folder = Path(outcome.version.path)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["content_hash"] == outcome.version.id
    train_lines = (folder / "train.jsonl").read_text().splitlines()
    assert len(train_lines) == outcome.version.train_examples == manifest["counts"]["train"]
    assert [d.id for d in list_datasets(engine, "acme")] == [outcome.version.id]
    assert get_dataset(engine, "acme", outcome.version.id[:8]).id == outcome.version.id
    # Nothing new since: the watermark says so; a newer qualifying post is counted.
    assert new_qualifying_since_last(engine, settings, "acme") == 0
    upsert_posts(
        engine, "acme", [PostIn(id="fresh", hook="H", body="B", engagement_rate=0.5, ts=now)]
    )
    assert new_qualifying_since_last(engine, settings, "acme") == 1
    # Collecting the same data again gives the same version, not a second one.
    upsert_posts(
        engine, "acme", [PostIn(id="fresh", hook="H", body="B", engagement_rate=0.0, ts=now)]
    )
    again = collect_dataset(engine, settings, query_from(settings, "acme"))
    assert again.version is not None and again.version.id == outcome.version.id
    assert len(list_datasets(engine, "acme")) == 1


def test_not_enough_data_records_nothing(engine: Engine, settings: Settings) -> None:
    upsert_posts(engine, "acme", [post(i, 0.2, 0.5) for i in range(10)])
    query = CollectQuery(tenant_id="acme", engagement_threshold=0.06, days_back=7)
    outcome = collect_dataset(engine, settings, query)
    assert outcome.result.status == "not_enough_data" and outcome.version is None
    assert list_datasets(engine, "acme") == []
    leftovers = list((settings.artifacts_dir / "datasets" / "acme").iterdir())
    assert leftovers == []
