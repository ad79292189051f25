"""Event validation: every kind of bad field is refused with its index, field and reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tuneloop.domain.experiments import EventKind
from tuneloop.events.ingest import validate_events
from tuneloop.events.schema import EventIn, Rejection

TS = "2026-11-01T12:00:00+02:00"


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "idempotency_key": "k1",
        "kind": "outcome",
        "unit_id": "user-1",
        "experiment_key": "ab-test-20261101-001",
        "arm": "candidate",
        "engagement": 0.07,
        "ts": TS,
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not ...}


def problems_of(raw: dict[str, Any]) -> list[Rejection]:
    problems: list[Rejection] = []
    assert validate_events([raw], problems) == []
    return problems


def test_a_good_event_of_each_kind_validates() -> None:
    outcome = EventIn.model_validate(event())
    assert outcome.kind is EventKind.OUTCOME
    assert outcome.ts == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    generation = EventIn.model_validate(
        event(
            kind="generation",
            engagement=...,
            tokens=300,
            cost=0.0002,
            latency_ms=812.5,
            error=True,
            generation_id="g1",
            model_id="ft:gpt-4o-mini:acme::1",
        )
    )
    assert generation.tokens == 300
    assert generation.error is True
    exposure = EventIn.model_validate(event(kind="exposure", engagement=..., unit_id=" spaced "))
    assert exposure.unit_id == " spaced "  # ids are opaque: kept exactly
    assert EventIn.model_validate(event(experiment_key=None, arm=None)).arm is None


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"engagement": -0.1}, "engagement", "greater than or equal to 0"),
        ({"engagement": float("nan")}, "engagement", "finite number"),
        ({"engagement": "lots"}, "engagement", "valid number"),
        ({"engagement": True}, "engagement", "valid number"),
        ({"tokens": False}, "tokens", "valid integer"),
        ({"unit_id": "u\x00"}, "unit_id", "NUL"),
        ({"model_id": "m\x00"}, "model_id", "NUL"),
        ({"engagement": None}, "engagement", "required for an outcome event"),
        ({"kind": "click"}, "kind", "'exposure', 'outcome' or 'generation'"),
        ({"ts": "2026-11-01T12:00:00"}, "ts", "timezone"),
        ({"ts": "yesterday"}, "ts", "valid datetime"),
        ({"unit_id": ""}, "unit_id", "at least 1 character"),
        ({"idempotency_key": "x" * 129}, "idempotency_key", "at most 128 characters"),
        ({"tokens": -1}, "tokens", "greater than or equal to 0"),
        ({"tokens": 2.5}, "tokens", "valid integer"),
        ({"latency_ms": float("inf")}, "latency_ms", "finite number"),
        ({"cost": -0.01}, "cost", "greater than or equal to 0"),
        ({"arm": None}, "arm", "required when experiment_key is given"),
        ({"experiment_key": None}, "experiment_key", "required when arm is given"),
        ({"engagment": 0.1}, "engagment", "unknown field"),
    ],
)
def test_a_bad_field_is_named_with_its_reason(
    overrides: dict[str, Any], field: str, reason: str
) -> None:
    problems = problems_of(event(**overrides))
    assert [(p.index, p.field) for p in problems] == [(0, field)]
    assert reason in problems[0].reason


def test_a_batch_keeps_the_good_and_reports_every_bad_one_by_position() -> None:
    batch: list[Any] = [
        event(idempotency_key="a"),
        event(idempotency_key="b", engagement=-1, ts="nope"),
        "not an event",
        event(idempotency_key="d"),
    ]
    problems: list[Rejection] = []
    valid = validate_events(batch, problems, offset=100)
    assert [(index, e.idempotency_key) for index, e in valid] == [(100, "a"), (103, "d")]
    assert sorted((p.index, p.field) for p in problems) == [
        (101, "engagement"),
        (101, "ts"),
        (102, "event"),
    ]
    assert str(problems[-1]).startswith("event 102: event: ")


def test_ts_may_be_left_out_for_the_server_to_stamp() -> None:
    from tuneloop.events.accept import stamped

    assert EventIn.model_validate(event(ts=...)).ts is None
    now = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert EventIn.model_validate(stamped(event(ts=...), now)).ts == now
    assert EventIn.model_validate(stamped(event(ts=None), now)).ts == now
    kept = EventIn.model_validate(stamped(event(), now)).ts
    assert kept == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert stamped("not an event", now) == "not an event"
