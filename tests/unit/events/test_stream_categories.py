"""Dead-letter categories of refused events, and the JSON an entry carries."""

from __future__ import annotations

from tuneloop.domain.event_stream import Category, Lag, decode_event, encode_event
from tuneloop.events.consumer import category_of
from tuneloop.events.schema import Rejection


def test_a_reference_not_found_is_unknown_reference_anything_else_validation() -> None:
    missing = Rejection(0, "experiment_key", "no experiment 'ab-x'")
    no_arm = Rejection(0, "arm", "experiment 'ab-x' has no arm 'z' (arms: a, b)")
    no_generation = Rejection(0, "generation_id", "no generation 'gen-1'")
    assert category_of([missing]) is Category.UNKNOWN_REFERENCE
    assert category_of([no_arm, no_generation]) is Category.UNKNOWN_REFERENCE
    too_long = Rejection(0, "generation_id", "String should have at most 128 characters")
    assert category_of([too_long]) is Category.VALIDATION  # malformed, not missing
    assert category_of([missing, Rejection(0, "engagement", "required")]) is Category.VALIDATION
    assert category_of([]) is Category.VALIDATION


def test_entries_round_trip_and_undecodable_ones_come_back_as_text() -> None:
    event = {"idempotency_key": "é-1", "engagement": 0.5, "ts": "2026-12-05T00:00:00Z"}
    assert decode_event(encode_event(event)) == event
    assert decode_event(encode_event(event).encode()) == event
    assert decode_event(b"{not json") == "{not json"  # refused later by validation, not lost


def test_lag_json_rounds_the_age() -> None:
    assert Lag(3, 1.23456).to_json() == {"pending": 3, "oldest_age_seconds": 1.235}
    assert Lag(0, None).to_json() == {"pending": 0, "oldest_age_seconds": None}
