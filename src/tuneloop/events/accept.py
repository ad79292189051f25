"""The HTTP edge of the event stream: validate each event, then append the good ones.

Called by ``POST /v1/events`` (and by ``tuneloop dlq replay``): every event is validated on
its own, as ingestion would (fields, then the generation it names and its experiment and
arm, each read in one query), and an idempotency key already stored, or repeated in the
batch, counts as a duplicate. What passes is appended to the stream as the client sent it;
the answer comes once the append is durable. The consumer validates again (clients may XADD
directly), completes outcomes from their generation and writes.

A generation id not found is refused only when nothing waits in the stream (the lag is read
first, then the store again): a generation posted in an earlier request may still wait for
the consumer, so while events wait such an outcome is appended and the consumer decides
(written once its generation is, else dead-lettered as ``unknown_reference``).

An event without ``ts`` is stamped here, at acceptance, with ``now`` (the server's clock,
scaled under ``worker.clock_speed``), before it is appended: the consumer may write it much
later, and experiment and rollout windows are read in the server's clock, not the client's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from tuneloop.domain.event_stream import EventStream
from tuneloop.domain.experiments import EventKind
from tuneloop.events.ingest import IngestReport, _experiment_arms, _experiment_problem
from tuneloop.events.ingest import validate_events as validate_fields
from tuneloop.events.inherit import Links, inherit, linked_generations
from tuneloop.events.schema import EventIn, Rejection
from tuneloop.store.events import generations_by_id, stored_keys


def accept_events(
    engine: Engine,
    stream: EventStream,
    tenant_id: str,
    events: Sequence[Any],
    *,
    now: datetime | None = None,
) -> IngestReport:
    """Validate ``events`` for ``tenant_id`` and append the accepted ones to ``stream``.

    ``accepted`` counts the events appended (durable in the stream, written soon),
    ``duplicates`` those already stored or repeated in the batch. With ``now``, an event
    without ``ts`` is appended stamped with it (without: the consumer stamps it when it writes).
    """
    if now is not None:
        events = [stamped(event, now) for event in events]
    report = IngestReport(received=len(events))
    problems: list[Rejection] = []
    valid = validate_fields(events, problems)
    links = linked_generations(engine, tenant_id, events)
    deferred = _missing_generations(engine, stream, tenant_id, valid, links)
    arms = _experiment_arms(engine, tenant_id, events, links)
    known = stored_keys(engine, tenant_id, (event.idempotency_key for _, event in valid))
    seen: set[str] = set()
    accepted: list[Any] = []
    for index, event in valid:
        completed = inherit(event, links)
        if isinstance(completed, tuple) and event.generation_id in deferred:
            reason = None  # its generation may still wait in the stream: the consumer decides
        elif isinstance(completed, tuple):
            reason = completed
        else:
            reason = _experiment_problem(completed, arms)
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


def stamped(event: Any, now: datetime) -> Any:
    """``event`` with ``ts`` set to ``now`` when it has none (anything but a dict: as it is)."""
    if isinstance(event, dict) and event.get("ts") is None:
        return event | {"ts": now.isoformat()}
    return event


def _missing_generations(
    engine: Engine,
    stream: EventStream,
    tenant_id: str,
    valid: Sequence[tuple[int, EventIn]],
    links: Links,
) -> set[str]:
    """Generation ids named but not stored that may still wait in the stream (``links`` gains
    those written meanwhile); empty when nothing waits, so the unknown ones are refused."""
    missing = {
        event.generation_id
        for _, event in valid
        if event.generation_id is not None
        and event.kind is not EventKind.GENERATION
        and event.generation_id not in links
    }
    if not missing:
        return set()
    try:
        waiting = stream.lag().pending > 0
    except Exception:  # the stream cannot say: let the consumer decide
        return missing
    links.update(generations_by_id(engine, tenant_id, missing))  # read after the lag
    return (
        {generation_id for generation_id in missing if generation_id not in links}
        if waiting
        else set()
    )
