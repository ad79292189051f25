"""The proxy's background event writer, on the real store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tuneloop.events.ingest import IngestReport, ingest_events
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


def test_a_batch_that_keeps_failing_is_dropped_and_the_writer_goes_on(engine: Engine) -> None:
    calls: list[int] = []

    def down_for_a_while(engine: Engine, tenant_id: str, events: Sequence[Any]) -> IngestReport:
        calls.append(len(events))
        if len(calls) <= RETRY_ATTEMPTS:  # every attempt at the first batch
            raise OperationalError("INSERT", {}, Exception("database is down"))
        return ingest_events(engine, tenant_id, events)

    recorder = EventRecorder(engine, ingest=down_for_a_while)
    recorder.record(TENANT, [EVENT])
    assert recorder.flush(10)  # given up after its attempts, not stuck
    later = EVENT | {"idempotency_key": "generation:gen-2", "generation_id": "gen-2"}
    recorder.record(TENANT, [later])
    assert recorder.flush(10)
    recorder.close()
    with Session(engine) as session:
        keys = session.scalars(select(OutcomeEvent.idempotency_key)).all()
    assert keys == ["generation:gen-2"]
