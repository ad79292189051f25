"""The event stream contract on both adapters (app database; Redis with a private key), on
SQLite and PostgreSQL: written once, poison dead-lettered by category, replay, reclaim."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tuneloop.domain.event_stream import Category, EventStream
from tuneloop.domain.experiments import ArmSpec
from tuneloop.events.accept import accept_events
from tuneloop.events.consumer import EventConsumer
from tuneloop.events.dlq import purge, replay
from tuneloop.experiments.service import create_experiment

KEY = "ab-test-20261205-001"
ARMS = [ArmSpec("baseline", "gpt-4o-mini", "1", 0.5), ArmSpec("candidate", "ft:x", "2", 0.5)]
# Another pair of models: a running test already compares ARMS' (one test per set of models).
LATER_ARMS = [ArmSpec("baseline", "gpt-4o-mini", "1", 0.5), ArmSpec("candidate", "ft:y", "3", 0.5)]
TS = "2026-12-05T12:00:00Z"
StreamFactory = Callable[..., EventStream]  # the ``make_stream`` fixture


@pytest.fixture
def experiment(engine: Engine) -> str:
    create_experiment(engine, "acme", arms=ARMS, key=KEY)
    return KEY


def ev(i: int, **fields: Any) -> dict[str, Any]:
    event = {
        "idempotency_key": f"k-{i}",
        "kind": "outcome",
        "unit_id": f"u-{i % 7}",
        "experiment_key": KEY,
        "arm": "candidate",
        "engagement": 0.1,
        "ts": TS,
    }
    return event | fields


def stored(engine: Engine) -> tuple[int, int]:
    """Rows, and distinct keys, in the events table (counted in SQL)."""
    query = "SELECT count(*), count(DISTINCT idempotency_key) FROM outcome_events"
    with engine.connect() as connection:
        rows, keys = connection.execute(text(query)).one()
    return int(rows), int(keys)


def test_appended_events_are_written_once_and_acknowledged(
    engine: Engine, make_stream: StreamFactory, experiment: str
) -> None:
    stream = make_stream()
    stream.append("acme", [ev(i) for i in range(250)])
    lag = stream.lag()
    assert lag.pending == 250 and lag.oldest_age_seconds is not None
    consumer = EventConsumer(stream, engine, batch_size=100)
    done = consumer.drain()
    assert (done.read, done.written, done.dead_lettered) == (250, 250, 0)
    assert stored(engine) == (250, 250)
    assert stream.lag().pending == 0 and stream.lag().oldest_age_seconds is None
    stream.append("acme", [ev(i) for i in range(10)])  # a client's retry, XADDed again
    assert consumer.drain().duplicates == 10
    assert stored(engine) == (250, 250)


def test_malformed_entries_go_to_the_validation_queue_at_once(
    engine: Engine, make_stream: StreamFactory, experiment: str
) -> None:
    stream = make_stream()
    stream.append("acme", [ev(1), {"kind": "outcome"}, "not an object", ev(4, surprise=1)])
    stream.append("", [ev(5)])  # XADDed without a tenant
    done = EventConsumer(stream, engine).drain()
    assert (done.written, done.dead_lettered) == (1, 4)
    assert stream.dead_letter_counts() == {
        Category.VALIDATION: 4,
        Category.UNKNOWN_REFERENCE: 0,
        Category.PROCESSING: 0,
    }
    letters = stream.dead_letters(Category.VALIDATION)
    assert {letter.source for letter in letters} == {stream.name}
    assert all(letter.attempts == 1 and letter.entry_id for letter in letters)
    assert any("surprise" in letter.error for letter in letters)
    assert any("tenant" in letter.error for letter in letters)
    assert stream.lag().pending == 0
    assert purge(stream, Category.VALIDATION) == 4
    assert stream.dead_letter_counts()[Category.VALIDATION] == 0


def test_an_unknown_reference_is_retried_then_dead_lettered_then_replayed_after_the_fix(
    engine: Engine, make_stream: StreamFactory, experiment: str
) -> None:
    stream = make_stream(claim_idle_seconds=0)  # redelivered at once
    stream.append("acme", [ev(1, experiment_key="ab-test-later"), ev(2)])
    consumer = EventConsumer(stream, engine, max_deliveries=3)
    first = consumer.run_once()
    assert (first.written, first.retried, first.dead_lettered) == (1, 1, 0)
    assert consumer.run_once().retried == 1
    assert consumer.run_once().dead_lettered == 1
    [letter] = stream.dead_letters(Category.UNKNOWN_REFERENCE)
    assert letter.attempts == 3 and "ab-test-later" in letter.error
    assert replay(engine, stream, Category.UNKNOWN_REFERENCE).refused  # not fixed yet: kept
    assert stream.dead_letter_counts()[Category.UNKNOWN_REFERENCE] == 1
    create_experiment(engine, "acme", arms=LATER_ARMS, key="ab-test-later")  # the fix
    replayed = replay(engine, stream, Category.UNKNOWN_REFERENCE)
    assert (replayed.letters, replayed.appended, replayed.refused) == (1, 1, [])
    assert consumer.drain().written == 1
    assert stored(engine) == (2, 2)
    assert stream.dead_letter_counts()[Category.UNKNOWN_REFERENCE] == 0


def _poison_trigger(engine: Engine) -> None:
    """A real database failure for one unit's rows (as a broken column or disk would be)."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER poison BEFORE INSERT ON outcome_events "
                    "WHEN NEW.unit_id = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "IF NEW.unit_id = 'poison' THEN RAISE EXCEPTION 'poisoned row'; END IF; "
                    "RETURN NEW; END $$"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER poison BEFORE INSERT ON outcome_events "
                    "FOR EACH ROW EXECUTE FUNCTION poison()"
                )
            )


def test_a_write_that_fails_is_isolated_and_dead_lettered_as_processing(
    engine: Engine, make_stream: StreamFactory, experiment: str
) -> None:
    _poison_trigger(engine)
    stream = make_stream(claim_idle_seconds=0)
    stream.append("acme", [ev(i) for i in range(5)] + [ev(5, unit_id="poison")])
    consumer = EventConsumer(stream, engine, max_deliveries=2)
    first = consumer.run_once()
    assert (first.written, first.retried) == (5, 1)  # the good ones are not held back
    assert consumer.run_once().dead_lettered == 1
    [letter] = stream.dead_letters(Category.PROCESSING)
    assert letter.attempts == 2 and "poisoned row" in letter.error
    with engine.begin() as connection:
        connection.execute(
            text(
                "DROP TRIGGER poison"
                + ("" if engine.dialect.name == "sqlite" else " ON outcome_events")
            )
        )
    assert replay(engine, stream, Category.PROCESSING).appended == 1
    assert consumer.drain().written == 1
    assert stored(engine) == (6, 6)


def test_a_dead_consumers_entries_are_reclaimed_by_another_after_the_idle_time(
    engine: Engine, make_stream: StreamFactory, experiment: str
) -> None:
    stream = make_stream()
    stream.append("acme", [ev(i) for i in range(20)])
    held = stream.read("consumer-a", 100)  # consumer a reads, then dies without acknowledging
    assert len(held) == 20 and {entry.deliveries for entry in held} == {1}
    assert make_stream(claim_idle_seconds=60).read("consumer-b", 100) == []  # not idle yet
    taken = make_stream(claim_idle_seconds=0).read("consumer-b", 100)
    assert [entry.id for entry in taken] == [entry.id for entry in held]
    assert {entry.deliveries for entry in taken} == {2}
    done = EventConsumer(make_stream(claim_idle_seconds=0), engine, name="consumer-c").drain()
    assert done.written == 20
    assert stored(engine) == (20, 20) and stream.lag().pending == 0


def test_the_consumer_goes_on_when_the_redis_stream_vanishes(
    engine: Engine,
    make_stream: StreamFactory,
    experiment: str,
    stream_kind: str,
    redis_client: Any,
    stream_key: str,
) -> None:
    if stream_kind != "redis":
        pytest.skip("a Redis restart without persistence")
    stream = make_stream()
    consumer = EventConsumer(stream, engine)
    stream.append("acme", [ev(1)])
    assert consumer.drain().written == 1
    redis_client.delete(stream_key)  # what a restart of a Redis that keeps nothing does
    stream.append("acme", [ev(2)])  # appended after the restart: must not be lost
    assert consumer.run_once().read == 0  # the group is gone: noticed, recreated
    assert consumer.drain().written == 1
    assert stored(engine) == (2, 2)


def gen(i: int) -> dict[str, Any]:
    """A generation served by the experiment's candidate arm."""
    return ev(i, idempotency_key=f"g-{i}", kind="generation", generation_id=f"gen-{i}") | {
        "unit_id": f"u-{i}",
        "model_id": "ft:x@2",
        "engagement": None,
    }


def liked(key: str, generation_id: str, **fields: Any) -> dict[str, Any]:
    """An outcome naming only its generation (plus ``fields``)."""
    return {
        "idempotency_key": key,
        "kind": "outcome",
        "generation_id": generation_id,
        "engagement": 0.2,
        "ts": TS,
    } | fields


def written(engine: Engine, key: str) -> tuple[Any, ...] | None:
    query = text(
        "SELECT unit_id, model_id, experiment_key, arm FROM outcome_events"
        " WHERE idempotency_key = :key"
    )
    with engine.connect() as connection:
        row = connection.execute(query, {"key": key}).one_or_none()
    return None if row is None else tuple(row)


def test_outcomes_named_by_generation_inherit_in_the_consumer_unknown_ids_dead_lettered(
    engine: Engine, make_stream: StreamFactory, experiment: str
) -> None:
    stream = make_stream(claim_idle_seconds=0)  # redelivered at the next read
    stream.append("acme", [gen(1)])
    stream.append(
        "acme",
        [
            liked("o-1", "gen-1"),
            liked("o-2", "gen-nope"),  # names no generation: may come later, retried
            liked("o-3", "gen-1", unit_id="someone-else"),  # contradicts it: never right
        ],
    )
    consumer = EventConsumer(stream, engine, max_deliveries=2)
    first = consumer.run_once()
    assert (first.written, first.retried, first.dead_lettered) == (2, 1, 1)
    assert written(engine, "o-1") == ("u-1", "ft:x@2", KEY, "candidate")
    assert consumer.run_once().dead_lettered == 1
    [unknown] = stream.dead_letters(Category.UNKNOWN_REFERENCE)
    assert unknown.attempts == 2 and "gen-nope" in unknown.error
    [invalid] = stream.dead_letters(Category.VALIDATION)
    assert invalid.attempts == 1 and invalid.error.startswith("unit_id")
    assert written(engine, "o-2") is None and written(engine, "o-3") is None


def test_the_edge_refuses_an_unknown_generation_only_when_nothing_waits(
    engine: Engine, make_stream: StreamFactory, experiment: str
) -> None:
    stream = make_stream()
    refused = accept_events(engine, stream, "acme", [liked("o-1", "gen-2")])
    assert (refused.accepted, [p.field for p in refused.problems]) == (0, ["generation_id"])
    stream.append("acme", [gen(2)])  # posted earlier, not written yet
    waiting = accept_events(engine, stream, "acme", [liked("o-1", "gen-2")])
    assert (waiting.accepted, waiting.problems) == (1, [])  # the consumer decides
    assert EventConsumer(stream, engine).drain().written == 2
    assert written(engine, "o-1") == ("u-2", "ft:x@2", KEY, "candidate")
    stored_now = accept_events(engine, stream, "acme", [liked("o-2", "gen-2")])
    assert (stored_now.accepted, stored_now.problems) == (1, [])
