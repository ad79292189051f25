"""Collector throughput and memory vs PostgreSQL's own COPY of the same query.

Seeds N synthetic posts into a PostgreSQL schema (reused between runs when the count
matches), then, in the same run:

  * reference: ``COPY (<the collector's SQL>) TO STDOUT`` written to a file (psycopg 3);
  * ours: the collector's JSONL export of the same query (``export_posts_jsonl``: on
    PostgreSQL the server builds the lines, ``COPY (SELECT row_to_json …) TO STDOUT``), in a
    child process that reports its own peak RSS, once capped at --small rows and once
    uncapped;
  * the row path it replaced (rows into tuples, orjson in Python, what SQLite still uses),
    whose output must be the same bytes (checked).

Prints rows/s for each, the ratio (ours / COPY; goal >= 0.5) and the peak RSS growth
from --small to N rows (goal < 50 MB).

    python bench/collect.py                       # 1,000,000 posts, 100,000 small
    python bench/collect.py --posts 20000 --small 2000   # smoke run
Needs PostgreSQL: TUNELOOP_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from tuneloop.collect.export import export_posts_jsonl, write_posts_jsonl
from tuneloop.collect.query import CollectQuery, Source, collect_statement, stream_posts
from tuneloop.config import DatabaseSettings, SourceSettings
from tuneloop.store.db import make_engine, normalize_url
from tuneloop.store.migrate import is_up_to_date, upgrade
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
TENANT = "bench"
NOW = datetime(2026, 11, 1, tzinfo=UTC)  # fixed, so the seeded schema can be reused


def schema_url(base: str, schema: str) -> str:
    separator = "&" if "?" in base else "?"
    return f"{normalize_url(base)}{separator}options=-csearch_path%3D{schema}"


def query(max_records: int | None) -> CollectQuery:
    # Threshold 0 and a wide window: every seeded post qualifies, so N rows stream.
    return CollectQuery(
        tenant_id=TENANT, engagement_threshold=0.0, days_back=60, max_records=max_records, now=NOW
    )


def _seeded(base_url: str, schema: str, posts: int) -> bool:
    """Whether ``schema`` holds ``posts`` posts at the current migration (an older schema
    lacks columns the collector reads, so it is seeded again)."""
    engine = make_engine(schema_url(base_url, schema))
    try:
        if not is_up_to_date(engine):
            return False
        with engine.connect() as connection:
            count = connection.execute(text("SELECT count(*) FROM posts")).scalar_one()
        return bool(count == posts)
    finally:
        engine.dispose()


def seed(base_url: str, posts: int, schema: str) -> None:
    admin = make_engine(base_url)
    with admin.begin() as connection:
        exists = connection.execute(
            text(
                "SELECT 1 FROM information_schema.tables"
                " WHERE table_schema=:s AND table_name='posts'"
            ),
            {"s": schema},
        ).first()
        if exists and _seeded(base_url, schema, posts):
            print(f"reusing {posts:,} seeded posts in schema {schema}")
            return
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    # Bulk loading a million rows takes longer than the default 60 s statement timeout.
    engine = make_engine(schema_url(base_url, schema), DatabaseSettings(command_timeout_seconds=0))
    upgrade(engine)
    started = time.perf_counter()
    columns = [
        "tenant_id",
        "id",
        "persona_id",
        "hook",
        "body",
        "engagement_rate",
        "impressions",
        "engagements",
        "tokens_used",
        "model_id",
        "ts",
        "created_at",
    ]
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY posts ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in generate_posts(SyntheticSpec(posts=posts, seed=11, weeks=4), now=NOW):
                copy.write_row(
                    [
                        TENANT,
                        row["id"],
                        row["persona_id"],
                        row["hook"],
                        row["body"],
                        row["engagement_rate"],
                        row["impressions"],
                        row["engagements"],
                        row["tokens_used"],
                        row["model_id"],
                        row["ts"],
                        NOW,
                    ]
                )
        raw.commit()
        cursor.execute("ANALYZE posts")
        raw.commit()
    finally:
        raw.close()
    print(f"seeded {posts:,} posts in {time.perf_counter() - started:.1f}s")


def copy_reference(url: str, out: Path) -> tuple[int, float]:
    engine = make_engine(url)
    statement = collect_statement(Source(SourceSettings()), query(None))
    sql = str(
        statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )
    raw = engine.raw_connection()
    rows = 0
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        with open(out, "wb") as sink, cursor.copy(f"COPY ({sql}) TO STDOUT") as copy:  # type: ignore[attr-defined]
            for block in copy:
                sink.write(block)
                rows += bytes(block).count(b"\n")
        elapsed = time.perf_counter() - started
    finally:
        raw.close()
    return rows, elapsed


def child(url: str, max_records: int | None, out: Path, chunk_size: int, rows_path: bool) -> None:
    """Runs in its own process so its peak RSS is its own."""
    engine = make_engine(url)
    source = Source(SourceSettings())
    started = time.perf_counter()
    with open(out, "wb") as sink:
        if rows_path:
            chunks = stream_posts(engine, source, query(max_records), chunk_size=chunk_size)
            rows = write_posts_jsonl(chunks, sink)
        else:
            rows = export_posts_jsonl(
                engine, source, query(max_records), sink, chunk_size=chunk_size
            )
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "seconds": elapsed, "peak_rss_mb": peak_mb}))


def run_child(
    url: str, max_records: int | None, out: Path, chunk_size: int, *, rows_path: bool = False
) -> dict[str, float]:
    args = [
        sys.executable,
        __file__,
        "--child",
        "--url",
        url,
        "--out",
        str(out),
        "--chunk-size",
        str(chunk_size),
    ]
    if max_records is not None:
        args += ["--max-records", str(max_records)]
    if rows_path:
        args.append("--rows-path")
    result = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def same_bytes(a: Path, b: Path) -> bool:
    with open(a, "rb") as left, open(b, "rb") as right:
        while True:
            block = left.read(1 << 20)
            if block != right.read(1 << 20):
                return False
            if not block:
                return True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="Row cap of the small RSS run.")
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--url", default=os.environ.get("TUNELOOP_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--max-records", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rows-path", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.url, args.max_records, args.out, args.chunk_size, args.rows_path)
        return
    schema = f"bench_collect_{args.posts}"
    seed(args.url, args.posts, schema)
    url = schema_url(args.url, schema)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        copy_reference(url, folder / "warm.tsv")  # warm the page cache for both sides
        ref_rows, ref_seconds = copy_reference(url, folder / "copy.tsv")
        small = run_child(url, args.small, folder / "small.jsonl", args.chunk_size)
        full = run_child(url, None, folder / "full.jsonl", args.chunk_size)
        old = run_child(url, None, folder / "rows.jsonl", args.chunk_size, rows_path=True)
        with open(folder / "full.jsonl", "rb") as f:
            lines = sum(1 for _ in f)
        assert lines == ref_rows == full["rows"] == old["rows"], "row counts differ"
        assert same_bytes(folder / "full.jsonl", folder / "rows.jsonl"), "outputs differ"
        # The reference once more after ours, its faster time kept: on a shared machine a
        # single slow reference would flatter the ratio.
        ref_seconds = min(ref_seconds, copy_reference(url, folder / "copy.tsv")[1])
    ours_rate = full["rows"] / full["seconds"]
    ref_rate = ref_rows / ref_seconds
    growth = full["peak_rss_mb"] - small["peak_rss_mb"]
    print(f"rows                       {ref_rows:,}")
    print(f"COPY ... TO STDOUT (best 2){ref_rate:>12,.0f} rows/s  ({ref_seconds:.2f}s)")
    old_rate = old["rows"] / old["seconds"]
    print(f"tuneloop collector → JSONL {ours_rate:>12,.0f} rows/s  ({full['seconds']:.2f}s)")
    print(f"  row path (orjson), before{old_rate:>12,.0f} rows/s  ({old['seconds']:.2f}s)")
    print("  outputs                  byte-identical")
    print(f"ratio (ours / COPY)        {ours_rate / ref_rate:>12.2f}   goal >= 0.5")
    print(f"ratio (row path / COPY)    {old_rate / ref_rate:>12.2f}")
    print(f"peak RSS at {small['rows']:,} rows   {small['peak_rss_mb']:>8.1f} MB")
    print(f"peak RSS at {full['rows']:,} rows {full['peak_rss_mb']:>8.1f} MB")
    print(f"peak RSS growth            {growth:>12.1f} MB  goal < 50 MB")


if __name__ == "__main__":
    main()
