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

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from cachetools import TTLCache
from sqlalchemy import Engine

from tuneloop.domain.event_stream import EventStream
from tuneloop.domain.experiments import EventKind
from tuneloop.events.ingest import (
    Arms,
    IngestReport,
    _experiment_problem,
    named_experiments,
    read_arms,
)
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
    arms: StartedArms | None = None,
) -> IngestReport:
    """Validate ``events`` for ``tenant_id`` and append the accepted ones to ``stream``.

    ``accepted`` counts the events appended (durable in the stream, written soon),
    ``duplicates`` those already stored or repeated in the batch. With ``now``, an event
    without ``ts`` is appended stamped with it (without: the consumer stamps it when it writes).
    ``arms`` remembers started experiments between calls (the HTTP edge keeps one).
    """
    if now is not None:
        events = [stamped(event, now) for event in events]
    report = IngestReport(received=len(events))
    problems: list[Rejection] = []
    valid = validate_fields(events, problems)
    links = linked_generations(engine, tenant_id, events)
    deferred = _missing_generations(engine, stream, tenant_id, valid, links)
    keys = named_experiments(events, links)
    experiments = (
        arms.lookup(engine, tenant_id, keys) if arms else read_arms(engine, tenant_id, keys)
    )
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
            reason = _experiment_problem(completed, experiments)
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


class StartedArms:
    """The arms of started experiments, remembered per tenant for ``ttl`` seconds.

    The edge checks every event's experiment and arm; reading them per request was a third
    of its database work. An experiment's arms do not change once it has started, so a
    started experiment is remembered (a draft or an unknown key is read again next time:
    it may start or be created at any moment). The consumer checks again when it writes,
    so an experiment removed meanwhile still cannot take events.
    """

    def __init__(
        self,
        *,
        ttl: float = 30.0,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._started: TTLCache[tuple[str, str], frozenset[str]] = TTLCache(size, ttl, timer=clock)
        self._lock = threading.Lock()  # cachetools caches are not thread-safe
        self.reads = 0  # database reads made (tests)

    def lookup(self, engine: Engine, tenant_id: str, keys: set[str]) -> Arms:
        found: Arms = {}
        with self._lock:
            for key in keys:
                arms = self._started.get((tenant_id, key))
                if arms is not None:
                    found[key] = arms
        missing = keys - found.keys()
        if missing:
            self.reads += 1
            read = read_arms(engine, tenant_id, missing)
            with self._lock:
                for key, arms in read.items():
                    if arms is not None:
                        self._started[(tenant_id, key)] = arms
            found |= read
        return found
