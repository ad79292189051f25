"""Synthetic traffic: deterministic, assigned by the real assigner, with the asked-for lift."""

from __future__ import annotations

import numpy as np
import pytest

from tuneloop.events.ingest import validate_events
from tuneloop.events.schema import Rejection
from tuneloop.experiments.assignment import Assigner
from tuneloop.synthetic.traffic import TrafficSpec, generate_traffic

ARMS = [("baseline", 0.5), ("candidate", 0.5)]


def events_of(spec: TrafficSpec) -> list[dict]:
    return [event for chunk in generate_traffic(spec) for event in chunk]


def test_same_seed_same_events_and_every_event_is_valid() -> None:
    spec = TrafficSpec("ab-test-1", ARMS, units=300, seed=3, posts_per_unit=2)
    first, second = events_of(spec), events_of(spec)
    assert [e["idempotency_key"] for e in first] == [e["idempotency_key"] for e in second]
    assert [e.get("engagement") for e in first] == [e.get("engagement") for e in second]
    problems: list[Rejection] = []
    assert len(validate_events(first, problems)) == len(first)
    assert problems == []
    keys = [e["idempotency_key"] for e in first]
    assert len(set(keys)) == len(keys)


def test_units_are_in_the_arm_the_assigner_gives_them() -> None:
    spec = TrafficSpec("ab-test-1", ARMS, units=500)
    assigner = Assigner("ab-test-1", ARMS)
    for event in events_of(spec):
        assert event["arm"] == assigner.assign(event["unit_id"])


def test_engagement_means_carry_the_true_lift() -> None:
    spec = TrafficSpec("ab-test-1", ARMS, units=20_000, base_rate=0.04, lift=0.25, noise=0.6)
    outcomes = [e for e in events_of(spec) if e["kind"] == "outcome"]
    means = {
        arm: np.mean([e["engagement"] for e in outcomes if e["arm"] == arm])
        for arm in ("baseline", "candidate")
    }
    assert means["baseline"] == pytest.approx(0.04, rel=0.02)
    assert means["candidate"] / means["baseline"] - 1 == pytest.approx(0.25, abs=0.035)


def test_failed_generations_have_no_outcome() -> None:
    spec = TrafficSpec("ab-test-1", ARMS, units=3000, error_rate=0.2)
    events = events_of(spec)
    failed = {e["generation_id"] for e in events if e["kind"] == "generation" and e["error"]}
    assert 0.15 < len(failed) / 3000 < 0.25
    assert not any(e["generation_id"] in failed for e in events if e["kind"] == "outcome")
