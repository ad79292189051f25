"""Event consumer throughput vs binary COPY FROM into the events table, same events, same run.

Appends N synthetic events (as clients send them: JSON, ISO timestamps) to the stream, then
times the consumer draining them into ``outcome_events`` (validation, experiment checks,
idempotent write, acknowledgement), against the limit underneath it: binary ``COPY FROM``
of the same rows into ``outcome_events`` itself (its key and index included, no
validation). Also prints the append rate (the work ``POST /v1/events`` does after parsing).

    python bench/consume.py                          # 100,000 events, embedded (DB) stream
    python bench/consume.py --stream redis           # Redis Streams (REDIS_URL or local)
    python bench/consume.py --events 20000 --rounds 1
Needs PostgreSQL: TUNELOOP_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from typing import Any

from sqlalchemy import Engine, text

from ingest import DEFAULT_URL, TENANT, batches, drop, fresh, make_events, rate, reference_rows
from tuneloop.domain.event_stream import EventStream
from tuneloop.events.consumer import EventConsumer
from tuneloop.store.events import COLUMNS, COPY_TYPES, count_events


def copy_indexed(engine: Engine, rows: list[tuple[Any, ...]], batch: int) -> float:
    """Seconds to binary-COPY the rows into the keyed, indexed outcome_events."""
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE outcome_events"))
    statement = f"COPY outcome_events ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    start = time.perf_counter()
    for part in batches(rows, batch):
        with engine.begin() as connection:
            cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(statement) as copy:
                copy.set_types(list(COPY_TYPES))
                for row in part:
                    copy.write_row(row)
    return time.perf_counter() - start


def make_stream(kind: str, engine: Engine, key: str) -> tuple[EventStream, Any]:
    if kind == "redis":
        import redis

        from tuneloop.events.redis_stream import RedisEventStream

        client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
        return RedisEventStream(client, key=key, group="bench"), client
    from tuneloop.store.event_stream import DatabaseEventStream

    return DatabaseEventStream(engine), None


def consume(
    stream: EventStream, engine: Engine, events: list[dict[str, Any]], batch: int
) -> tuple[float, float]:
    """(seconds to append, seconds for the consumer to write) the events."""
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE outcome_events"))
    start = time.perf_counter()
    for part in batches(events, 1000):
        stream.append(TENANT, part)
    appended = time.perf_counter() - start
    consumer = EventConsumer(stream, engine, batch_size=batch)
    start = time.perf_counter()
    done = consumer.drain(timeout=3600)
    written = time.perf_counter() - start
    assert done.written == len(events) and done.dead_lettered == 0, done
    return appended, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000, help="Consumer batch (and COPY batch).")
    parser.add_argument("--rounds", type=int, default=2, help="Interleaved rounds; best of each.")
    parser.add_argument("--stream", choices=["database", "redis"], default="database")
    args = parser.parse_args()
    base = os.environ.get("TUNELOOP_BENCH_DATABASE_URL", DEFAULT_URL)
    events = make_events(args.events)
    n = len(events)
    rows = reference_rows(events, typed=True)
    print(
        f"{n:,} events, consumer batches of {args.batch:,}, {args.stream} stream, PostgreSQL, "
        f"best of {args.rounds} rounds"
    )
    engine, schema = fresh(base)
    key = f"tuneloop-bench:{uuid.uuid4().hex}:events"
    stream, client = make_stream(args.stream, engine, key)
    best: dict[str, float] = {}
    try:
        for _ in range(args.rounds):
            appended, written = consume(stream, engine, events, args.batch)
            trial = {"copy": copy_indexed(engine, rows, args.batch), "append": appended}
            trial["consume"] = written
            best = {k: min(v, best.get(k, v)) for k, v in trial.items()}
        assert count_events(engine, TENANT) == n
    finally:
        if client is not None:
            for found in client.scan_iter(match=f"{key}*"):
                client.delete(found)
            client.close()
        drop(base, engine, schema)
    print(f"binary COPY into outcome_events (key + index) {rate(n, best['copy'])}")
    print(f"append to the stream                          {rate(n, best['append'])}")
    print(f"consumer: stream -> outcome_events, acked     {rate(n, best['consume'])}")
    print(f"ratio consumer / binary COPY: {best['copy'] / best['consume']:.2f}x (goal >= 0.7x)")


if __name__ == "__main__":
    main()
