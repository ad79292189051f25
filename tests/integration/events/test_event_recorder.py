"""The proxy's background event writer, on the real store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.orm import Session

from tuneloop.events.ingest import IngestReport, ingest_events
from tuneloop.observability.metrics import DEAD_LETTERED_EVENTS
from tuneloop.serving.recorder import RETRY_ATTEMPTS, EventRecorder
from tuneloop.store.experiment_models import OutcomeEvent

TENANT = "acme"
EVENT = {
    "idempotency_key": "generation:gen-1",
    "kind": "generation",
    "unit_id": "u-1",
    "model_id": "m@1",
    "generation_id": "gen-1",
    "tokens": 12,
    "latency_ms": 80.0,
    "error": False,
    "ts": datetime.now(UTC),
}


def stored(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(OutcomeEvent)) or 0)


def test_a_batch_the_database_refuses_once_is_written_on_the_retry(engine: Engine) -> None:
    calls: list[int] = []

    def blip_once(engine: Engine, tenant_id: str, events: Sequence[Any]) -> IngestReport:
        calls.append(len(events))
        if len(calls) == 1:  # what a dropped connection looks like to the writer
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return ingest_events(engine, tenant_id, events)

    recorder = EventRecorder(engine, ingest=blip_once)
    recorder.record(TENANT, [EVENT])
    assert recorder.flush(10)
    recorder.close()
    assert calls == [1, 1] and stored(engine) == 1


def test_a_batch_that_keeps_failing_is_set_aside_and_the_writer_goes_on(
    engine: Engine, tmp_path: Path
) -> None:
    calls: list[int] = []

    def down_for_a_while(engine: Engine, tenant_id: str, events: Sequence[Any]) -> IngestReport:
        calls.append(len(events))
        if len(calls) <= RETRY_ATTEMPTS + 1:  # every attempt at the first batch, and alone
            raise OperationalError("INSERT", {}, Exception("database is down"))
        return ingest_events(engine, tenant_id, events)

    dead = tmp_path / "dead.jsonl"
    recorder = EventRecorder(engine, ingest=down_for_a_while, dead_letters=dead)
    recorder.record(TENANT, [EVENT])
    assert recorder.flush(10)  # given up after its attempts, not stuck
    later = EVENT | {"idempotency_key": "generation:gen-2", "generation_id": "gen-2"}
    recorder.record(TENANT, [later])
    assert recorder.flush(10)
    recorder.close()
    with Session(engine) as session:
        keys = session.scalars(select(OutcomeEvent.idempotency_key)).all()
    assert keys == ["generation:gen-2"]
    [kept] = [json.loads(line) for line in dead.read_text().splitlines()]
    assert kept["event"]["idempotency_key"] == "generation:gen-1"


def _event(n: int, **changes: Any) -> dict[str, Any]:
    return EVENT | {"idempotency_key": f"generation:gen-{n}", "generation_id": f"gen-{n}"} | changes


def test_one_event_the_database_refuses_never_takes_the_others_with_it(
    engine: Engine, tmp_path: Path
) -> None:
    """A stand-in for PostgreSQL refusing a whole statement for one row (``DataError``, as a
    NUL byte does): every good event of the batch is stored, the bad one is counted, logged
    and kept, replayable, in the dead-letter file."""
    poisoned = {"generation:gen-13", "generation:gen-71"}

    def refuses_poison(engine: Engine, tenant_id: str, events: Sequence[Any]) -> IngestReport:
        if any(event["idempotency_key"] in poisoned for event in events):
            raise DataError("INSERT", {}, Exception("invalid byte sequence for encoding"))
        return ingest_events(engine, tenant_id, events)

    dead = tmp_path / "dead-letters" / "generation-events.jsonl"
    before = DEAD_LETTERED_EVENTS._value.get()
    recorder = EventRecorder(engine, ingest=refuses_poison, dead_letters=dead)
    for n in range(100):  # queued before the writer wakes: written as one batch
        recorder.record(TENANT, [_event(n)])
    assert recorder.flush(30)
    recorder.close()
    assert stored(engine) == 98
    lines = [json.loads(line) for line in dead.read_text().splitlines()]
    assert sorted(line["event"]["idempotency_key"] for line in lines) == sorted(poisoned)
    assert {line["tenant"] for line in lines} == {TENANT}
    assert {line["error"] for line in lines} == {"DataError"}
    assert DEAD_LETTERED_EVENTS._value.get() - before == 2
    # Replayable: the kept event is what ingestion accepts.
    replayed = ingest_events(engine, TENANT, [lines[0]["event"]])
    assert replayed.accepted == 1
