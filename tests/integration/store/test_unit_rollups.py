"""unit_rollups on SQLite and PostgreSQL: analysis read from the rollups equals the same
reduction of the raw events (edges inside an hour included), redelivery counts once, and
the migration's backfill builds the rollups the inserts maintain."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, astuple
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, select

from tuneloop.domain.experiments import ArmStatistics
from tuneloop.store.deployments import engagement_moments, generation_health
from tuneloop.store.events import COLUMNS, insert_events
from tuneloop.store.experiment_statistics import arm_statistics
from tuneloop.store.migrate import downgrade, upgrade
from tuneloop.store.rollup_models import UnitRollup
from tuneloop.store.rollups import fold

KEY = "ab-rollups-001"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LABELS = ["new@2", "old@1"]


def events(seed: int = 3, units: int = 60) -> list[dict[str, Any]]:
    """Experiment traffic over ~10 hours, with history before each unit's exposure (some
    in the exposure's own hour), null engagements, unpriced generations, failures, and
    rollout traffic (no experiment) for two model labels."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []

    def add(unit: str, kind: str, ts: datetime, **values: Any) -> None:
        rows.append({"unit_id": unit, "kind": kind, "ts": ts, **values})

    for index in range(units):
        unit, arm = f"u{index}", ("baseline", "candidate")[index % 2]
        exp = {"experiment_key": KEY, "arm": arm, "model_id": f"{arm}@1"}
        first = T0 + timedelta(minutes=float(rng.uniform(0, 600)))
        for _ in range(int(rng.integers(0, 4))):  # history, minutes to hours before
            before = first - timedelta(minutes=float(rng.uniform(1, 300)))
            engagement = None if rng.random() < 0.2 else float(rng.uniform(0, 0.2))
            add(unit, "outcome", before, engagement=engagement)
        add(unit, "exposure", first, **exp)
        add(unit, "exposure", first + timedelta(minutes=5), **exp)
        for _ in range(int(rng.integers(1, 6))):
            ts = first + timedelta(minutes=float(rng.uniform(0, 240)))
            priced = rng.random() < 0.8
            add(
                unit,
                "generation",
                ts,
                tokens=int(rng.integers(0, 400)) if priced else None,
                cost=float(rng.uniform(0, 1e-3)) if priced else None,
                latency_ms=float(rng.uniform(100, 900)) if rng.random() < 0.9 else None,
                error=bool(rng.random() < 0.1),
                **exp,
            )
            if rng.random() < 0.7:
                engagement = None if rng.random() < 0.1 else float(rng.uniform(0, 0.2))
                add(unit, "outcome", ts + timedelta(seconds=30), engagement=engagement, **exp)
        model = LABELS[index % 2]
        ts = T0 + timedelta(minutes=float(rng.uniform(0, 600)))
        add(unit, "generation", ts, model_id=model, latency_ms=float(rng.uniform(100, 900)))
        add(unit, "outcome", ts, model_id=model, engagement=float(rng.uniform(0, 0.2)))
    for number, row in enumerate(rows):
        row.update(tenant_id="acme", idempotency_key=f"k{number}", received_at=row["ts"])
        row.setdefault("error", False)
    return rows


def as_rows(found: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(event.get(name) for name in COLUMNS) for event in found]


def mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def unit_values(seen: list[dict[str, Any]]) -> dict[str, Any]:
    """One unit's metric values, as documented in ``arm_statistics``."""
    outcomes = [e for e in seen if e["kind"] == "outcome"]
    engaged = [e["engagement"] for e in outcomes if e["engagement"] is not None]
    generations = [e for e in seen if e["kind"] == "generation"]
    tokens = sum(e["tokens"] or 0 for e in generations)
    costs = [e["cost"] for e in generations if e["cost"] is not None]
    cost = sum(costs) if costs else None
    priced = cost is not None and tokens > 0
    return {
        "exposed": any(e["kind"] == "exposure" for e in seen),
        "engagement": mean(engaged),
        "cost_per_token": cost / tokens if priced else None,  # type: ignore[operator]
        "latency_ms": mean([e["latency_ms"] for e in generations if e["latency_ms"] is not None]),
        "error_rate": mean([float(e["error"]) for e in generations]),
        "engagement_per_post": (sum(engaged) if engaged else None, len(outcomes) or None),
        "cost_per_token_ratio": (cost, float(tokens)) if priced else (None, None),
    }


def reference(
    rows: list[dict[str, Any]], *, until: datetime | None, since: datetime | None
) -> dict[str, dict[str, float]]:
    """The raw-event computation, in Python: per unit, then per arm (flattened sums)."""
    mine = [e for e in rows if e.get("experiment_key") == KEY]
    first = {}
    for e in mine:
        if e["kind"] == "exposure":
            first[e["unit_id"]] = min(e["ts"], first.get(e["unit_id"], e["ts"]))
    units: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in mine:
        if until is None or e["ts"] <= until:
            units[(e["arm"], e["unit_id"])].append(e)
    arms: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (arm, unit), seen in units.items():
        v, total = unit_values(seen), arms[arm]
        total["exposed"] += v["exposed"]
        for metric in ("engagement", "cost_per_token", "latency_ms", "error_rate"):
            if v[metric] is not None:
                total[f"{metric}.n"] += 1
                total[f"{metric}.sum"] += v[metric]
                total[f"{metric}.sum_squares"] += v[metric] ** 2
        for name, (m, d) in (
            ("engagement_per_post", v["engagement_per_post"]),
            ("cost_per_token", v["cost_per_token_ratio"]),
        ):
            if d is not None:
                m = m or 0.0  # SQL sums skip a NULL numerator
                total[f"{name}.units"] += 1
                for part, value in (("m", m), ("mm", m * m), ("d", d), ("dd", d * d)):
                    total[f"{name}.{part}"] += value
                total[f"{name}.md"] += m * d
        pre = [
            e
            for e in rows
            if e["unit_id"] == unit
            and e["kind"] == "outcome"
            and unit in first
            and e["ts"] < first[unit]
            and (since is None or e["ts"] >= since)
        ]
        engaged = [e["engagement"] for e in pre if e["engagement"] is not None]
        pre_mean = mean(engaged) or 0.0
        if v["engagement"] is not None:
            total["pre.units"] += bool(engaged)
            total["pre.sum"] += pre_mean
            total["pre.sum_squares"] += pre_mean**2
            total["pre.products"] += v["engagement"] * pre_mean
        m, d = v["engagement_per_post"]
        if d is not None:
            m0, d0 = sum(engaged), float(len(engaged))
            total["ratio_pre.units"] += bool(pre)
            total["ratio_pre.m0"] += m0
            total["ratio_pre.d0"] += d0
            total["ratio_pre.md0"] += (m or 0.0) * d0
    return {arm: dict(values) for arm, values in arms.items()}


def flatten(stats: ArmStatistics) -> dict[str, float]:
    """The same names as ``reference`` for the fields it checks."""
    found: dict[str, float] = {"exposed": stats.exposed_units}
    for metric, moments in stats.metrics.items():
        found |= {f"{metric}.{k}": float(v) for k, v in asdict(moments).items()}
    for name, ratio in stats.ratios.items():
        parts = ("units", "m", "mm", "d", "dd", "md")
        found |= {f"{name}.{part}": v for part, v in zip(parts, astuple(ratio), strict=True)}
    pre = astuple(stats.pre_period["engagement"])
    parts = ("units", "sum", "sum_squares", "products")
    found |= {f"pre.{part}": v for part, v in zip(parts, pre, strict=True)}
    units, m0, _, d0, _, _, _, _, md0, _ = astuple(stats.ratio_pre_period["engagement_per_post"])
    return (
        found
        | {"ratio_pre.units": units, "ratio_pre.m0": m0, "ratio_pre.d0": d0}
        | {"ratio_pre.md0": md0}
    )


@pytest.mark.parametrize(
    ("until", "since"),
    [
        (None, None),
        (T0 + timedelta(hours=4, minutes=23, seconds=7), None),  # an earlier look, mid-hour
        (T0 + timedelta(hours=7), T0 - timedelta(minutes=97)),  # on the hour; since mid-hour
    ],
)
def test_rollup_analysis_equals_the_raw_event_computation(
    engine: Engine, until: datetime | None, since: datetime | None
) -> None:
    rows = events()
    insert_events(engine, as_rows(rows))
    found = {
        s.arm: s for s in arm_statistics(engine, "acme", KEY, until=until, pre_period_since=since)
    }
    expected = reference(rows, until=until, since=since)
    assert set(found) == set(expected) == {"baseline", "candidate"}
    for arm, values in expected.items():
        flat = flatten(found[arm])
        assert {k: flat[k] for k in values} == pytest.approx(values, rel=1e-9, abs=1e-12)
        assert expected[arm]["pre.units"] > 0 and expected[arm]["ratio_pre.units"] > 0


def test_rollout_reads_equal_the_raw_events_in_a_window(engine: Engine) -> None:
    rows = events()
    insert_events(engine, as_rows(rows))
    start, end = T0 + timedelta(minutes=41), T0 + timedelta(hours=6, minutes=3)
    moments = engagement_moments(engine, "acme", LABELS, start=start, end=end)
    for label in LABELS:
        mine = [
            e
            for e in rows
            if e.get("experiment_key") is None
            and e.get("model_id") == label
            and start <= e["ts"] <= end
        ]
        per_unit: dict[str, list[float]] = defaultdict(list)
        for e in mine:
            if e["kind"] == "outcome" and e["engagement"] is not None:
                per_unit[e["unit_id"]].append(e["engagement"])
        values = [float(np.mean(v)) for v in per_unit.values()]
        assert moments[label].n == len(values) > 0
        assert moments[label].sum == pytest.approx(sum(values), rel=1e-9)
        assert moments[label].sum_squares == pytest.approx(sum(v * v for v in values), rel=1e-9)
        health = generation_health(engine, "acme", label, start=start, end=end)
        generations = [e for e in mine if e["kind"] == "generation"]
        latencies = sorted(e["latency_ms"] for e in generations)
        assert health.generations == len(generations)
        assert health.errors == sum(e["error"] for e in generations)
        assert health.p95_latency_ms == latencies[math.ceil(0.95 * len(latencies)) - 1]


def rollups(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        found = connection.execute(select(UnitRollup).order_by(*UnitRollup.__table__.primary_key))
        return [tuple(round(x, 9) if isinstance(x, float) else x for x in row) for row in found]


@pytest.mark.parametrize("method", ["auto", "values"])
def test_a_redelivered_event_is_not_counted_twice(engine: Engine, method: Any) -> None:
    found = events()
    rows = as_rows(found)
    half = len(rows) // 2
    insert_events(engine, rows[:half], method=method)
    # redelivered: the first half again with the rest, ten keys twice in one batch
    written = insert_events(engine, rows[: half + 10] + rows[half:], method=method)
    assert written.inserted == len(rows) - half
    assert insert_events(engine, rows, method=method).inserted == 0

    once = fold(rows)
    expected = [
        tuple(round(x, 9) if isinstance(x, float) else x for x in (*key, *_ordered(sums)))
        for key, sums in sorted(once.items())
    ]
    assert rollups(engine) == expected
    statistics = {s.arm: flatten(s) for s in arm_statistics(engine, "acme", KEY)}
    for arm, values in reference(found, until=None, since=None).items():
        assert {k: statistics[arm][k] for k in values} == pytest.approx(values, rel=1e-9)


def _ordered(sums: dict[str, Any]) -> list[Any]:
    """A folded rollup's values in the table's column order (after the key)."""
    names = [c.name for c in UnitRollup.__table__.columns][6:]
    return [sums[name] for name in names]


def test_the_migration_backfills_the_rollups_the_inserts_maintain(engine: Engine) -> None:
    insert_events(engine, as_rows(events()))
    maintained = rollups(engine)
    before = arm_statistics(engine, "acme", KEY)
    downgrade(engine, "0013")
    upgrade(engine)
    assert rollups(engine) == maintained
    assert arm_statistics(engine, "acme", KEY) == before
