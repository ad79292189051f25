"""Experiment analysis time against the number of events, for a fixed number of units.

For each size (default 10k, 100k, 1M events), a fresh PostgreSQL schema gets a running
two-arm experiment and that many events from ``--units`` units: each unit has a little
history before the experiment (outcomes without an experiment: the CUPED pre-period), is
exposed, then generates and earns engagement during ``--sessions`` hours of the 7-day
experiment. Events are written through ``store.events.insert_events`` (the consumer's
write path, which maintains ``unit_rollups``). Then, after ``ANALYZE``:

  * report: ``analyze_experiment`` (every metric, CUPED, ratios, SRM, decision), best of
    --rounds;
  * look: the same at an earlier look (``until`` mid-experiment: whole hours from the
    rollups, the partial hour from the events);

and prints the times and the ratio largest / smallest size (goal: flat, ratio < 2).

    python bench/analyze.py                              # 10k, 100k, 1M events, 1,000 units
    python bench/analyze.py --sizes 2000 20000 --units 100   # smoke run
Needs PostgreSQL: TUNELOOP_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, create_engine, text

from tuneloop.domain.experiments import ArmSpec
from tuneloop.experiments.service import analyze_experiment, create_experiment
from tuneloop.store.db import make_engine, normalize_url
from tuneloop.store.events import insert_events
from tuneloop.store.migrate import upgrade

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
TENANT = "bench"
KEY = "ab-test-analyze-001"
ARMS = [ArmSpec("baseline", "gpt-4o-mini", "1", 0.5), ArmSpec("candidate", "ft:x", "1", 0.5)]
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
HOURS = 168
PRE = 2  # outcomes per unit before its exposure


def unit_events(unit: int, count: int, sessions: int, rng: np.random.Generator) -> Iterator[Any]:
    """One unit's ``count`` events as row tuples (``store.events.COLUMNS`` order)."""
    arm = ARMS[unit % 2]
    name, model = arm.name, f"{arm.model_id}@{arm.version}"
    uid = f"u{unit}"
    hours = np.sort(rng.choice(HOURS, size=sessions, replace=False))
    for i in range(PRE):
        ts = START - timedelta(days=3, minutes=float(rng.uniform(0, 600)))
        yield _row(f"{uid}-p{i}", None, uid, None, None, "outcome", 0.05, ts)
    first = START + timedelta(hours=int(hours[0]), minutes=float(rng.uniform(0, 30)))
    yield _row(f"{uid}-x", KEY, uid, name, model, "exposure", None, first)
    lift = 1.05 if name == "candidate" else 1.0
    for i in range(count - PRE - 1):
        hour = int(hours[i % sessions])
        ts = START + timedelta(hours=hour, minutes=float(rng.uniform(30, 59.9)))
        if i % 2:
            value = float(0.05 * lift * rng.lognormal(-0.125, 0.5))
            yield _row(f"{uid}-{i}", KEY, uid, name, model, "outcome", value, ts)
        else:
            yield _row(f"{uid}-{i}", KEY, uid, name, model, "generation", None, ts, rng)


def _row(
    key: str,
    experiment: str | None,
    unit: str,
    arm: str | None,
    model: str | None,
    kind: str,
    engagement: float | None,
    ts: datetime,
    rng: np.random.Generator | None = None,
) -> tuple[Any, ...]:
    generation = rng is not None
    tokens, cost = (300, 1.8e-4) if generation else (None, None)
    latency = float(800 * rng.lognormal(0, 0.3)) if rng is not None else None
    error = bool(rng.random() < 0.01) if rng is not None else False
    common = (TENANT, key, experiment, unit, arm, model, None, None, kind, engagement)
    return (*common, tokens, cost, latency, error, ts, ts)


def load(engine: Engine, events: int, units: int, sessions: int) -> None:
    rng = np.random.default_rng(events)
    per_unit = max(events // units, PRE + 2)
    batch: list[Any] = []
    for unit in range(units):
        batch.extend(unit_events(unit, per_unit, sessions, rng))
        if len(batch) >= 20_000:
            insert_events(engine, batch)
            batch = []
    if batch:
        insert_events(engine, batch)
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))


def best(run: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def fresh(base: str) -> tuple[Engine, str]:
    schema = f"bench_analyze_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_url(base))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    separator = "&" if "?" in base else "?"
    engine = make_engine(f"{normalize_url(base)}{separator}options=-csearch_path%3D{schema}")
    upgrade(engine)
    create_experiment(engine, TENANT, arms=ARMS, key=KEY, now=START)
    return engine, schema


def drop(base: str, engine: Engine, schema: str) -> None:
    engine.dispose()
    admin = create_engine(normalize_url(base))
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def measure(base: str, events: int, args: argparse.Namespace) -> tuple[float, float, float]:
    engine, schema = fresh(base)
    try:
        started = time.perf_counter()
        load(engine, events, args.units, args.sessions)
        loaded = time.perf_counter() - started
        now = START + timedelta(hours=HOURS)
        look = START + timedelta(hours=HOURS / 2, minutes=17)

        def report() -> None:
            analyze_experiment(engine, TENANT, KEY, now=now)

        def earlier() -> None:
            analyze_experiment(engine, TENANT, KEY, now=now, until=look)

        report()  # warm the connection pool and caches once
        return loaded, best(report, args.rounds), best(earlier, args.rounds)
    finally:
        drop(base, engine, schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=5, help="Active hours per unit.")
    parser.add_argument("--rounds", type=int, default=5, help="Best of this many analyses.")
    args = parser.parse_args()
    base = os.environ.get("TUNELOOP_BENCH_DATABASE_URL", DEFAULT_URL)
    print(
        f"{args.units:,} units, {args.sessions} active hours each, PostgreSQL, "
        f"best of {args.rounds}"
    )
    results = {}
    for size in args.sizes:
        loaded, report, look = measure(base, size, args)
        results[size] = (report, look)
        print(
            f"  {size:>9,} events: report {report * 1000:7.1f} ms   earlier look "
            f"{look * 1000:7.1f} ms   (load {loaded:.1f} s)"
        )
    small, large = min(args.sizes), max(args.sizes)
    for index, name in enumerate(("report", "earlier look")):
        ratio = results[large][index] / results[small][index]
        print(f"ratio {name} {large:,} / {small:,} events: {ratio:.2f} (goal < 2: flat)")


if __name__ == "__main__":
    main()
