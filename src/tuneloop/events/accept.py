"""The HTTP edge of the event stream: validate each event, then append the good ones.

Called by ``POST /v1/events`` (and by ``tuneloop dlq replay``): every event is validated on
its own, as ingestion would (fields, then its experiment and arm, read in one query), and
an idempotency key already stored, or repeated in the batch, counts as a duplicate. What
passes is appended to the stream as the client sent it; the answer comes once the append
is durable. The consumer validates again (clients may XADD directly) and writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from tuneloop.events.ingest import IngestReport, _experiment_arms, _experiment_problem
from tuneloop.events.ingest import validate_events as validate_fields
from tuneloop.events.schema import Rejection
from tuneloop.events.stream import EventStream
from tuneloop.store.events import stored_keys


def accept_events(
    engine: Engine, stream: EventStream, tenant_id: str, events: Sequence[Any]
) -> IngestReport:
    """Validate ``events`` for ``tenant_id`` and append the accepted ones to ``stream``.

    ``accepted`` counts the events appended (durable in the stream, written soon),
    ``duplicates`` those already stored or repeated in the batch.
    """
    report = IngestReport(received=len(events))
    problems: list[Rejection] = []
    valid = validate_fields(events, problems)
    arms = _experiment_arms(engine, tenant_id, events)
    known = stored_keys(engine, tenant_id, (event.idempotency_key for _, event in valid))
    seen: set[str] = set()
    accepted: list[Any] = []
    for index, event in valid:
        reason = _experiment_problem(event, arms)
        if reason is not None:
            problems.append(Rejection(index, *reason))
        elif event.idempotency_key in known or event.idempotency_key in seen:
            report.duplicates += 1
        else:
            seen.add(event.idempotency_key)
            accepted.append(events[index])
    stream.append(tenant_id, accepted)
    report.accepted = len(accepted)
    report.problems = sorted(problems, key=lambda problem: problem.index)
    return report
