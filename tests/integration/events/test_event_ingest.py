"""Ingestion on SQLite and PostgreSQL: bad events refused, repeats ignored, SQL aggregates exact."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tuneloop.domain.experiments import METRICS, ArmSpec
from tuneloop.events.ingest import ingest_events
from tuneloop.experiments.service import create_experiment
from tuneloop.store.events import count_events
from tuneloop.store.experiment_models import OutcomeEvent
from tuneloop.store.experiment_statistics import arm_statistics
from tuneloop.synthetic.traffic import TrafficSpec, generate_traffic

KEY = "ab-test-20261101-001"
ARMS = [ArmSpec("baseline", "gpt-4o-mini", "1", 0.6), ArmSpec("candidate", "ft:x", "2", 0.4)]
TS = "2026-11-01T12:00:00Z"


@pytest.fixture
def experiment(engine: Engine) -> str:
    create_experiment(engine, "acme", arms=ARMS, key=KEY)
    return KEY


def traffic(units: int, seed: int = 5) -> list[dict[str, Any]]:
    spec = TrafficSpec(
        KEY,
        [(a.name, a.weight) for a in ARMS],
        units=units,
        seed=seed,
        posts_per_unit=2,
        error_rate=0.1,
        lift=0.3,
        chunk_units=100,
    )
    return [event for chunk in generate_traffic(spec) for event in chunk]


def outcome(key: str, **overrides: Any) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "kind": "outcome",
        "unit_id": "u1",
        "experiment_key": KEY,
        "arm": "candidate",
        "engagement": 0.1,
        "ts": TS,
        **overrides,
    }


def test_bad_events_are_refused_with_reasons_and_good_ones_kept(
    engine: Engine, experiment: str
) -> None:
    batch = [
        outcome("a"),
        outcome("b", engagement=-1),
        outcome("c", arm="candidat"),
        outcome("d", experiment_key="ab-test-unknown"),
        {"kind": "exposure"},
        outcome("f", unit_id="u2"),
    ]
    report = ingest_events(engine, "acme", batch)
    assert (report.received, report.accepted, report.duplicates, report.rejected) == (6, 2, 0, 4)
    found = {(p.index, p.field) for p in report.problems}
    assert {
        (1, "engagement"),
        (2, "arm"),
        (3, "experiment_key"),
        (4, "idempotency_key"),
        (4, "unit_id"),
    } <= found
    assert "has no arm 'candidat' (arms: baseline, candidate)" in str(report.problems)
    assert count_events(engine, "acme", KEY) == 2


def test_resending_a_batch_changes_nothing(engine: Engine, experiment: str) -> None:
    events = traffic(400)
    first = ingest_events(engine, "acme", events)
    assert (first.accepted, first.duplicates, first.rejected) == (len(events), 0, 0)
    before = arm_statistics(engine, "acme", KEY)
    again = ingest_events(engine, "acme", events)
    assert (again.accepted, again.duplicates) == (0, len(events))
    assert count_events(engine, "acme", KEY) == len(events)
    assert arm_statistics(engine, "acme", KEY) == before


def test_a_partly_known_batch_stores_only_the_new_events(engine: Engine, experiment: str) -> None:
    events = traffic(300)
    half = len(events) // 2
    ingest_events(engine, "acme", events[:half])
    # Known events last, and one key twice: the direct COPY fails late and is replayed.
    report = ingest_events(engine, "acme", [*events[half:], events[-1], *events[:half]])
    assert (report.accepted, report.duplicates) == (len(events) - half, half + 1)
    assert count_events(engine, "acme", KEY) == len(events)


@pytest.mark.parametrize("method", ["auto", "values"])
def test_rows_are_stored_as_sent(engine: Engine, experiment: str, method: str) -> None:
    sent = outcome(
        "x1",
        kind="generation",
        engagement=None,
        tokens=321,
        cost=0.00042,
        latency_ms=987.5,
        error=True,
        model_id="ft:x",
        post_id="p1",
        generation_id="g1",
        ts="2026-11-01T14:30:00+02:00",
    )
    received = datetime(2026, 11, 2, tzinfo=UTC)
    assert ingest_events(engine, "acme", [sent], method=method, now=received).accepted == 1  # type: ignore[arg-type]
    with Session(engine) as session:
        row = session.scalars(select(OutcomeEvent)).one()
    assert (row.tenant_id, row.idempotency_key, row.experiment_key, row.unit_id, row.arm) == (
        "acme",
        "x1",
        KEY,
        "u1",
        "candidate",
    )
    assert (row.model_id, row.post_id, row.generation_id, row.kind) == (
        "ft:x",
        "p1",
        "g1",
        "generation",
    )
    assert (row.engagement, row.tokens, row.cost, row.latency_ms, row.error) == (
        None,
        321,
        0.00042,
        987.5,
        True,
    )
    assert row.ts == datetime(2026, 11, 1, 12, 30, tzinfo=UTC)
    assert row.received_at == received


def test_tenants_are_isolated(engine: Engine, experiment: str) -> None:
    report = ingest_events(engine, "other-tenant", [outcome("a")])
    assert report.rejected == 1
    assert report.problems[0].field == "experiment_key"
    assert ingest_events(engine, "acme", [outcome("a")]).accepted == 1
    # The same idempotency key is a different event in another tenant.
    create_experiment(engine, "other-tenant", arms=ARMS, key=KEY)
    assert ingest_events(engine, "other-tenant", [outcome("a")]).accepted == 1
    assert count_events(engine, "acme") == 1
    assert [s.arm for s in arm_statistics(engine, "other-tenant", KEY)] == ["candidate"]


def test_events_of_a_draft_experiment_are_refused(engine: Engine) -> None:
    create_experiment(engine, "acme", arms=ARMS, key=KEY, start=False)
    report = ingest_events(engine, "acme", [outcome("a")])
    assert report.rejected == 1
    assert "draft" in report.problems[0].reason


def test_sql_aggregates_match_numpy(engine: Engine, experiment: str) -> None:
    events = traffic(600)
    ingest_events(engine, "acme", events)
    expected = numpy_moments(events)
    found = {stats.arm: stats for stats in arm_statistics(engine, "acme", KEY)}
    assert set(found) == set(expected)
    for arm, metrics in expected.items():
        assert found[arm].exposed_units == metrics["exposed"]
        for metric in METRICS:
            n, total, squares = metrics[metric]
            moments = found[arm].metrics[metric]
            assert moments.n == n
            assert moments.sum == pytest.approx(total, rel=1e-9)
            assert moments.sum_squares == pytest.approx(squares, rel=1e-9)


def numpy_moments(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The same per-unit-then-per-arm reduction as store.events, done in Python and numpy."""
    units: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        units[(event["arm"], event["unit_id"])].append(event)
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    exposed: dict[str, int] = defaultdict(int)
    for (arm, _unit), seen in units.items():
        exposed[arm] += any(e["kind"] == "exposure" for e in seen)
        outcomes = [e["engagement"] for e in seen if e["kind"] == "outcome"]
        generations = [e for e in seen if e["kind"] == "generation"]
        if outcomes:
            values[arm]["engagement"].append(np.mean(outcomes))
        if generations:
            values[arm]["cost_per_token"].append(
                sum(e["cost"] for e in generations) / sum(e["tokens"] for e in generations)
            )
            values[arm]["latency_ms"].append(np.mean([e["latency_ms"] for e in generations]))
            values[arm]["error_rate"].append(np.mean([float(e["error"]) for e in generations]))
    return {
        arm: {
            "exposed": exposed[arm],
            **{
                metric: (len(v), float(np.sum(v)), float(np.sum(np.square(v))))
                for metric, v in ((m, np.array(values[arm][m])) for m in METRICS)
            },
        }
        for arm in exposed
    }


def test_an_outcome_naming_a_generation_inherits_unit_model_experiment_and_arm(
    engine: Engine, experiment: str
) -> None:
    stored = outcome("g-1", kind="generation", engagement=None, model_id="ft:x", generation_id="g1")
    assert ingest_events(engine, "acme", [stored]).accepted == 1
    in_batch = outcome(
        "g-2", kind="generation", engagement=None, unit_id="u2", model_id="ft:x", generation_id="g2"
    )
    only_ids = {"kind": "outcome", "engagement": 0.2, "ts": TS}
    batch = [
        {"idempotency_key": "o1", "generation_id": "g1", **only_ids},  # stored before
        in_batch,
        {"idempotency_key": "o2", "generation_id": "g2", **only_ids},  # in the same batch
        {"idempotency_key": "o3", "generation_id": "nope", **only_ids},
        {"idempotency_key": "o4", "generation_id": "g1", "unit_id": "u9", **only_ids},
        {"idempotency_key": "o5", "generation_id": "g1", **only_ids},
    ]
    batch[-1]["unit_id"] = "u1"  # agreeing with the generation is fine
    report = ingest_events(engine, "globex", batch[:1])
    assert report.problems[0].field == "generation_id"  # another tenant's generation is unknown

    report = ingest_events(engine, "acme", batch)

    assert (report.accepted, report.rejected) == (4, 2)
    assert [(p.index, p.field) for p in report.problems] == [(3, "generation_id"), (4, "unit_id")]
    with Session(engine) as session:
        rows = session.scalars(select(OutcomeEvent).where(OutcomeEvent.kind == "outcome")).all()
    inherited = {r.idempotency_key: (r.unit_id, r.model_id, r.experiment_key, r.arm) for r in rows}
    assert inherited == {
        "o1": ("u1", "ft:x", KEY, "candidate"),
        "o2": ("u2", "ft:x", KEY, "candidate"),
        "o5": ("u1", "ft:x", KEY, "candidate"),
    }
    candidate = {s.arm: s for s in arm_statistics(engine, "acme", KEY)}["candidate"]
    assert candidate.metrics["engagement"].n == 2  # u1 and u2, each once
