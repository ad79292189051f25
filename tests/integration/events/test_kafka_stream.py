"""The Kafka event stream on librdkafka's built-in mock cluster (``test.mock.num.brokers``).

Skipped when confluent-kafka (the ``kafka`` extra) is not installed. Each test has its own
topic and consumer group; the cluster lives as long as this module's holder producer.
"""

from __future__ import annotations

import gc
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from tuneloop.config import Settings
from tuneloop.domain.event_stream import Category
from tuneloop.domain.experiments import ArmSpec
from tuneloop.errors import ConfigurationError
from tuneloop.events.consumer import EventConsumer
from tuneloop.events.dlq import replay
from tuneloop.events.factory import stream_for
from tuneloop.events.ingest import ingest_events
from tuneloop.experiments.service import create_experiment

confluent_kafka = pytest.importorskip("confluent_kafka")

from tuneloop.events.kafka_stream import KafkaEventStream  # noqa: E402

KEY = "ab-test-kafka"
ARMS = [ArmSpec("baseline", "gpt-4o-mini", "1", 0.5), ArmSpec("candidate", "ft:k", "2", 0.5)]
LATE_ARMS = [ArmSpec("baseline", "gpt-4o-mini", "1", 0.5), ArmSpec("candidate", "ft:l", "3", 0.5)]
runner = CliRunner()
# The KIP-848 group protocol: the mock cluster forms a group in ~1 s (the classic one waits
# out its rebalance delays, ~30 s for a group a dead member left).
CLIENT = {"group.protocol": "consumer", "log_level": "3"}


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    """A one-broker mock cluster; its address is what every client of the test connects to."""
    holder = confluent_kafka.Producer({"test.mock.num.brokers": 1, "log_level": 3})
    brokers = holder.list_topics(timeout=10).brokers.values()
    yield ",".join(f"{b.host}:{b.port}" for b in brokers)
    gc.collect()  # the tests' clients go before the cluster (else they log reconnects)
    holder.flush(1)


@pytest.fixture
def names() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return f"events-{suffix}", f"group-{suffix}"


@pytest.fixture
def open_stream(bootstrap: str, names: tuple[str, str]) -> Iterator[Any]:
    opened: list[KafkaEventStream] = []

    def build(claim_idle_seconds: float = 0.0) -> KafkaEventStream:
        topic, group = names
        stream = KafkaEventStream(
            bootstrap_servers=bootstrap,
            topic=topic,
            group=group,
            claim_idle_seconds=claim_idle_seconds,
            config=CLIENT,
        )
        opened.append(stream)
        return stream

    yield build
    for stream in opened:
        stream.close()


def _event(key: str, **fields: object) -> dict[str, object]:
    return {
        "idempotency_key": key,
        "kind": "outcome",
        "unit_id": f"u-{key}",
        "experiment_key": KEY,
        "arm": "candidate",
        "engagement": 0.1,
        "ts": "2026-12-05T12:00:00Z",
    } | fields


def _stored(engine: Engine) -> tuple[int, int]:
    query = "SELECT count(*), count(DISTINCT idempotency_key) FROM outcome_events"
    with engine.connect() as connection:
        rows, keys = connection.execute(text(query)).one()
    return int(rows), int(keys)


def test_appended_events_reach_the_events_table(engine: Engine, open_stream: Any) -> None:
    create_experiment(engine, "acme", arms=ARMS, key=KEY)
    stream = open_stream()
    ids = stream.append("acme", [_event(f"e{i}") for i in range(120)])
    stream.append("beta", [])
    assert len(ids) == 120 and stream.lag().pending == 120
    done = EventConsumer(stream, engine, batch_size=50).drain()
    assert (done.written, done.dead_lettered) == (120, 0)
    assert _stored(engine) == (120, 120)
    assert stream.lag().pending == 0  # offsets committed after the rows


def test_a_consumer_that_dies_before_committing_counts_nothing_twice(
    engine: Engine, open_stream: Any
) -> None:
    create_experiment(engine, "acme", arms=ARMS, key=KEY)
    first = open_stream()
    first.append("acme", [_event(f"r{i}") for i in range(40)])
    entries = first.read("a", 100)
    assert len(entries) == 40
    ingest_events(engine, "acme", [entry.event for entry in entries])  # database committed
    first.close()  # ... and the process is gone before the offsets were committed
    again = EventConsumer(open_stream(), engine).drain()
    assert (again.read, again.written, again.duplicates) == (40, 0, 40)  # delivered again
    assert _stored(engine) == (40, 40)


def test_poison_entries_land_in_their_dead_letter_topic(engine: Engine, open_stream: Any) -> None:
    create_experiment(engine, "acme", arms=ARMS, key=KEY)
    stream = open_stream()
    stream.append("acme", [_event("ok"), _event("bad", engagement=-1)])
    stream.append("acme", [_event("late", experiment_key="ab-test-not-yet")])
    consumer = EventConsumer(stream, engine, max_deliveries=3)
    consumer.drain()
    assert stream.dead_letter_counts() == {
        Category.VALIDATION: 1,
        Category.UNKNOWN_REFERENCE: 1,
        Category.PROCESSING: 0,
    }
    [bad] = stream.dead_letters(Category.VALIDATION)
    assert bad.event["idempotency_key"] == "bad" and "engagement" in bad.error
    assert bad.attempts == 1 and bad.source == stream.name
    [late] = stream.dead_letters(Category.UNKNOWN_REFERENCE)
    assert late.attempts == 3 and "experiment_key" in late.error  # after N deliveries
    assert late.entry_id != late.id and late.tenant_id == "acme"
    assert consumer.progress.retried == 2
    assert _stored(engine) == (1, 1) and stream.lag().pending == 0


def test_replay_produces_dead_letters_again_and_keeps_the_refused(
    engine: Engine, open_stream: Any
) -> None:
    create_experiment(engine, "acme", arms=ARMS, key=KEY)
    stream = open_stream()
    stream.append("acme", [_event("early", experiment_key="ab-test-never")])
    stream.append("acme", [_event("later", experiment_key="ab-test-late")])
    EventConsumer(stream, engine, max_deliveries=1).drain()
    assert stream.dead_letter_counts()[Category.UNKNOWN_REFERENCE] == 2
    create_experiment(engine, "acme", arms=LATE_ARMS, key="ab-test-late")  # the fix
    done = replay(engine, stream, Category.UNKNOWN_REFERENCE)
    assert (done.letters, done.appended, len(done.refused)) == (2, 1, 1)
    [kept] = stream.dead_letters(Category.UNKNOWN_REFERENCE)  # listed after a later removal
    assert kept.event["idempotency_key"] == "early"
    EventConsumer(stream, engine).drain()
    assert _stored(engine) == (1, 1)
    assert stream.remove_dead_letters(Category.UNKNOWN_REFERENCE) == 1
    assert sum(stream.dead_letter_counts().values()) == 0


def test_dead_letters_from_the_command_line(
    engine: Engine, open_stream: Any, bootstrap: str, names: tuple[str, str]
) -> None:
    from tuneloop.cli.main import app

    create_experiment(engine, "acme", arms=ARMS, key=KEY)
    open_stream().append("acme", [_event("ok"), _event("bad", engagement=-1)])
    topic, group = names
    env = {
        "TUNELOOP_EVENTS__STREAM": "kafka",
        "TUNELOOP_EVENTS__KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TUNELOOP_EVENTS__KAFKA_TOPIC": topic,
        "TUNELOOP_EVENTS__GROUP": group,
        "TUNELOOP_EVENTS__KAFKA_CONFIG": json.dumps(CLIENT),
    }
    drained = runner.invoke(app, ["consume", "events", "--drain"], env=env)
    assert "written 1" in drained.output and "dead-lettered 1" in drained.output, drained.output
    listed = runner.invoke(app, ["dlq", "list", "--json"], env=env)
    assert json.loads(listed.output)["dead_letters"]["validation"] == 1
    shown = runner.invoke(app, ["dlq", "show", "validation"], env=env)
    [letter] = [json.loads(line) for line in shown.output.splitlines()]
    assert letter["source"] == topic and letter["event"]["idempotency_key"] == "bad"
    purged = runner.invoke(app, ["dlq", "purge", "validation", "--yes"], env=env)
    assert "purged 1" in purged.output, purged.output
    assert _stored(engine) == (1, 1)


def test_kafka_needs_its_brokers(settings: Settings, engine: Engine) -> None:
    events = settings.events.model_copy(update={"stream": "kafka"})
    with pytest.raises(ConfigurationError, match="kafka_bootstrap_servers"):
        stream_for(settings.model_copy(update={"events": events}), engine, None)
