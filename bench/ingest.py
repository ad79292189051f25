"""Outcome-event ingestion throughput vs PostgreSQL's own COPY of the same rows.

Generates N synthetic events for a running experiment (timestamps as ISO strings, as they
arrive in JSON), then, in the same run and in batches of --batch:

  * reference: psycopg 3 ``cursor.copy`` of the same rows into a plain table (no keys, no
    indexes, no validation): the fastest way PostgreSQL takes rows;
  * ours: ``ingest_events`` (pydantic validation of every event, experiment and arm
    checks, idempotent insert into the indexed ``outcome_events``), with the write path
    picked automatically (COPY into a temporary table, then INSERT ... ON CONFLICT);
  * ours with the other write path (multi-row INSERT ... ON CONFLICT ... RETURNING);
  * ours re-sending the whole stream (every event a duplicate: nothing is written).

Prints events/s for each and the ratio ours / COPY (goal >= 0.5).

    python bench/ingest.py                     # 200,000 events in batches of 10,000
    python bench/ingest.py --events 20000      # smoke run
Needs PostgreSQL: TUNELOOP_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from sqlalchemy import Engine, create_engine, text

from tuneloop.domain.experiments import ArmSpec
from tuneloop.events.ingest import _EVENTS, ingest_events
from tuneloop.experiments.service import create_experiment
from tuneloop.store.db import make_engine, normalize_url
from tuneloop.store.events import COLUMNS, COPY_TYPES, WriteMethod, count_events
from tuneloop.store.migrate import upgrade
from tuneloop.synthetic.traffic import TrafficSpec, generate_traffic

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
TENANT = "bench"
KEY = "ab-test-bench-001"
ARMS = [ArmSpec("baseline", "gpt-4o-mini", "1", 0.5), ArmSpec("candidate", "ft:x", "1", 0.5)]


def schema_url(base: str, schema: str) -> str:
    separator = "&" if "?" in base else "?"
    return f"{normalize_url(base)}{separator}options=-csearch_path%3D{schema}"


def make_events(count: int) -> list[dict[str, Any]]:
    """``count`` events as a JSON client sends them (timestamps as ISO-8601 strings)."""
    spec = TrafficSpec(KEY, [(arm.name, arm.weight) for arm in ARMS], units=count, seed=1)
    events: list[dict[str, Any]] = []
    for chunk in generate_traffic(spec):
        for event in chunk:
            event["ts"] = event["ts"].isoformat()
        events.extend(chunk)
        if len(events) >= count:
            break
    return events[:count]


def batches(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def reference_rows(events: list[dict[str, Any]], *, typed: bool) -> list[tuple[Any, ...]]:
    """The events as ready-to-write row tuples, each COPY format given its best input.

    Text COPY takes the timestamps as the ISO strings they arrived as (passed through);
    binary COPY needs them parsed (done here, outside the timing).
    """
    received_at = datetime.now(UTC)
    rows = []
    for event in events:
        values = {**event, "tenant_id": TENANT, "received_at": received_at}
        if typed:
            values["ts"] = datetime.fromisoformat(event["ts"])
        else:
            values["received_at"] = received_at.isoformat()
        values.setdefault("error", False)
        rows.append(tuple(values.get(name) for name in COLUMNS))
    return rows


def copy_reference(engine: Engine, rows: list[tuple[Any, ...]], batch: int, binary: bool) -> float:
    """Seconds to COPY the rows, batch by batch, into a table with no keys or indexes."""
    columns = ", ".join(COLUMNS)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS plain_events"))
        connection.execute(
            text(f"CREATE TABLE plain_events AS SELECT {columns} FROM outcome_events WITH NO DATA")
        )
    statement = f"COPY plain_events ({columns}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")

    def run() -> None:
        for part in batches(rows, batch):
            with engine.begin() as connection:
                cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
                with cursor.copy(statement) as copy:
                    if binary:
                        copy.set_types(list(COPY_TYPES))
                    for row in part:
                        copy.write_row(row)

    return timed(run)


def ours(engine: Engine, events: list[dict[str, Any]], batch: int, method: WriteMethod) -> float:
    def run() -> None:
        for part in batches(events, batch):
            report = ingest_events(engine, TENANT, part, method=method)
            assert report.rejected == 0, report.problems[:3]

    return timed(run)


def breakdown(engine: Engine, events: list[dict[str, Any]], rows: list[tuple[Any, ...]]) -> None:
    """Where our time goes: validation alone, and a bare COPY into the keyed, indexed table."""

    def validate_all() -> None:
        for part in batches(events, 1000):  # each chunk let go, as ingestion does (kept,
            _EVENTS.validate_python(part)  # 200,000 models made the garbage collector 5x it)

    validate = timed(validate_all)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE outcome_events"))
    columns = ", ".join(COLUMNS)

    def copy_indexed() -> None:
        for part in batches(rows, 10_000):
            with engine.begin() as connection:
                cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
                with cursor.copy(
                    f"COPY outcome_events ({columns}) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(list(COPY_TYPES))
                    for row in part:
                        copy.write_row(row)

    indexed = timed(copy_indexed)
    n = len(events)
    print(f"  breakdown: pydantic validation alone  {rate(n, validate)}")
    print(
        f"  breakdown: binary COPY into outcome_events (key + index, no validation) "
        f"{rate(n, indexed)}"
    )


def fresh(base: str) -> tuple[Engine, str]:
    schema = f"bench_ingest_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_url(base))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    engine = make_engine(schema_url(base, schema))
    upgrade(engine)
    create_experiment(engine, TENANT, arms=ARMS, key=KEY)
    return engine, schema


def drop(base: str, engine: Engine, schema: str) -> None:
    engine.dispose()
    admin = create_engine(normalize_url(base))
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>10,.0f} events/s  ({seconds:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds; best of each.")
    parser.add_argument("--breakdown", action="store_true", help="Also time the parts of ours.")
    parser.add_argument(
        "--values-events", type=int, default=20_000, help="Events for the (slow) VALUES path."
    )
    args = parser.parse_args()
    base = os.environ.get("TUNELOOP_BENCH_DATABASE_URL", DEFAULT_URL)
    events = make_events(args.events)
    n = len(events)
    print(f"{n:,} events in batches of {args.batch:,} on PostgreSQL, best of {args.rounds} rounds")
    text_rows = reference_rows(events, typed=False)
    binary_rows = reference_rows(events, typed=True)
    best: dict[str, float] = {}
    engine, schema = fresh(base)
    try:
        for _ in range(args.rounds):  # interleaved, best of each: the machine may be shared
            with engine.begin() as connection:
                connection.execute(text("TRUNCATE outcome_events"))
            trial = {
                "text": copy_reference(engine, text_rows, args.batch, binary=False),
                "binary": copy_reference(engine, binary_rows, args.batch, binary=True),
                "ours": ours(engine, events, args.batch, "auto"),
                "resend": ours(engine, events, args.batch, "auto"),
            }
            assert count_events(engine, TENANT) == n
            best = {name: min(seconds, best.get(name, seconds)) for name, seconds in trial.items()}
    finally:
        drop(base, engine, schema)
    if args.breakdown:
        engine, schema = fresh(base)
        try:
            breakdown(engine, events, binary_rows)
        finally:
            drop(base, engine, schema)
    engine, schema = fresh(base)
    try:
        values = ours(engine, events[: args.values_events], args.batch, "values")
    finally:
        drop(base, engine, schema)
    text_copy, binary_copy, auto, resend = (best[k] for k in ("text", "binary", "ours", "resend"))
    reference = min(text_copy, binary_copy)
    n_values = min(n, args.values_events)
    print(f"COPY into a plain table, text          {rate(n, text_copy)}")
    print(f"COPY into a plain table, binary        {rate(n, binary_copy)}")
    print(f"ingest_events: COPY (+ ON CONFLICT)    {rate(n, auto)}")
    print(f"ingest_events: re-sent, all duplicates {rate(n, resend)}")
    print(f"ingest_events: multi-row VALUES        {rate(n_values, values)}  [{n_values:,} events]")
    print(
        f"ratio ours / fastest COPY: {reference / auto:.2f}x (goal >= 0.5x); "
        f"ours / text COPY: {text_copy / auto:.2f}x; "
        f"VALUES path / fastest COPY: {(n_values / values) / (n / reference):.2f}x"
    )


if __name__ == "__main__":
    main()
