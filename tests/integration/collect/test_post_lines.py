"""The collector's JSONL export: PostgreSQL's lines (COPY) and Python's (orjson) are the same
bytes on the same rows, including awkward text, numbers and timestamps."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, DateTime, Engine, Float, MetaData, String, Table, Text, insert, text

from tuneloop.collect.export import export_posts_jsonl, write_posts_jsonl
from tuneloop.collect.query import CollectQuery, Source, stream_posts
from tuneloop.config import SourceSettings
from tuneloop.store.models import Post

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TRICKY = [
    'Break me: },{"id": "x"} and \n a newline, "quotes", back\\slash \\n',
    "controls \x01 \x02 \x1f \t \r \x7f, unicode ünïcode ✓ 🎉 \u2028 \u2029 </script>",
    "",
]
# Numbers whose JSON differs between PostgreSQL and orjson unless rewritten.
RATES = [0.0, 1.0, 0.1, 0.25, 1e-4, 1e-5, 1.5e-5, 3e-7, 0.1234567890123456, 12345.0]
PG_ONLY_RATES = [float("nan"), float("inf"), 1e15, 1.2345678901234567e15, 1e16, 3.3e17, 1e300]


def python_lines(engine: Engine, source: Source, query: CollectQuery) -> bytes:
    sink = io.BytesIO()
    write_posts_jsonl(stream_posts(engine, source, query, chunk_size=3), sink)
    return sink.getvalue()


def exported(engine: Engine, source: Source, query: CollectQuery) -> tuple[int, bytes]:
    sink = io.BytesIO()
    rows = export_posts_jsonl(engine, source, query, sink, chunk_size=3)
    return rows, sink.getvalue()


def seed(engine: Engine) -> int:
    rates = RATES + (PG_ONLY_RATES if engine.dialect.name == "postgresql" else [])
    rows = [
        {
            "tenant_id": "acme",
            "id": f"p{i:03d}",
            "persona_id": None if i % 3 == 0 else f"persona {i % 2}",
            "hook": TRICKY[i % len(TRICKY)],
            "body": TRICKY[(i + 1) % len(TRICKY)],
            "engagement_rate": rate,
            "ts": NOW - timedelta(hours=i, microseconds=(0, 500_000, 123_456, 1)[i % 4]),
        }
        for i, rate in enumerate(rates)
    ]
    rows.append(rows[0] | {"id": "p-null", "engagement_rate": None})
    with engine.begin() as connection:
        connection.execute(insert(Post), rows)
    return len(rows)


def test_both_paths_write_the_same_bytes(engine: Engine) -> None:
    count = seed(engine)
    source = Source(SourceSettings())
    query = CollectQuery(tenant_id="acme", engagement_threshold=0.0, max_records=None, now=NOW)
    rows, lines = exported(engine, source, query)
    assert rows == count
    assert lines == python_lines(engine, source, query)
    decoded = [json.loads(line) for line in lines.split(b"\n")[:-1]]  # not splitlines: U+2028
    assert len(decoded) == count and {d["hook"] for d in decoded} == set(TRICKY)
    limited = CollectQuery(tenant_id="acme", engagement_threshold=0.1, max_records=2, now=NOW)
    assert exported(engine, source, limited) == (2, python_lines(engine, source, limited))


def test_nothing_qualifies(engine: Engine) -> None:
    query = CollectQuery(tenant_id="nobody", now=NOW)
    assert exported(engine, Source(SourceSettings()), query) == (0, b"")


@pytest.mark.parametrize("timezone", [True, False])
def test_a_teams_own_table_with_real_numbers(engine: Engine, timezone: bool) -> None:
    """A float4 rate and a naive timestamp column (no offset written) come out the same too."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")
    content = Table(
        "team_content",
        MetaData(),
        Column("post_uuid", String(64), primary_key=True),
        Column("author", String(64)),
        Column("opening", Text),
        Column("text_body", Text),
        Column("er", Float),
        Column("published_at", DateTime(timezone=timezone)),
    )
    content.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE team_content ALTER COLUMN er TYPE real"))
        connection.execute(
            insert(content),
            [
                {
                    "post_uuid": f"u{i}",
                    "author": "a",
                    "opening": TRICKY[i % 3],
                    "text_body": "B",
                    "er": rate,
                    "published_at": (NOW - timedelta(minutes=i, microseconds=i * 10))
                    if timezone
                    else datetime(2026, 11, 19, 12, i, 0, (0, 500_000, 123_456, 1)[i]),
                }
                for i, rate in enumerate([0.1, 0.3, 1e-5, 0.0])
            ],
        )
    source = Source(
        SourceSettings(
            table="team_content",
            id_column="post_uuid",
            tenant_column=None,
            persona_column="author",
            hook_column="opening",
            body_column="text_body",
            engagement_column="er",
            ts_column="published_at",
        )
    )
    query = CollectQuery(tenant_id="acme", engagement_threshold=0.0, max_records=None, now=NOW)
    rows, lines = exported(engine, source, query)
    assert rows == 4 and lines == python_lines(engine, source, query)
    assert (b"+00:00" in lines) is timezone
