"""Event use cases: accept a batch (the limit, validation, the append to the stream) and
read the consumer's lag for the read-your-writes notes of ``/evaluation`` and ``/deployment``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from tuneloop.domain.event_stream import EventStream
from tuneloop.errors import InvalidInputError, Problem
from tuneloop.events.accept import StartedArms, accept_events
from tuneloop.events.consumer import EventConsumer
from tuneloop.events.ingest import IngestReport


def accept_batch(
    engine: Engine,
    stream: EventStream,
    tenant_id: str,
    events: Sequence[Any],
    *,
    max_batch: int,
    consumer: EventConsumer | None = None,
    flush_generations: Callable[[], object] | None = None,
    now: datetime | None = None,
    arms: StartedArms | None = None,
) -> IngestReport:
    """``now`` (the server's clock) stamps the events sent without ``ts``.
    ``flush_generations`` writes the generations this process served but has not stored
    yet (before anything is appended), so an outcome sent right after its call finds the
    generation it names, at the edge and in the consumer. ``arms``: started experiments
    remembered between requests (``events.accept.StartedArms``)."""
    if len(events) > max_batch:
        raise InvalidInputError(
            f"a batch holds at most {max_batch} events; this one has {len(events)}",
            [Problem("body.events", f"at most {max_batch} items")],
        )
    if flush_generations is not None and any(names_a_generation(e) for e in events):
        flush_generations()
    report = accept_events(engine, stream, tenant_id, events, now=now, arms=arms)
    if consumer is not None and report.accepted:
        consumer.wake()  # the in-process consumer reads now rather than at its next poll
    return report


def stream_lag(stream: EventStream) -> dict[str, Any] | None:
    """The consumer's lag for read-your-writes notes (None when the stream cannot be read)."""
    try:
        return stream.lag().to_json()
    except Exception:  # the answer it decorates must not fail because of it
        return None


def names_a_generation(event: Any) -> bool:
    """Whether ``event`` names a generation (its outcome may need it flushed first)."""
    return isinstance(event, dict) and bool(event.get("generation_id"))
