"""Batch ingestion of outcome events: keep the good, refuse the bad with reasons, ignore repeats.

One call handles one batch (an HTTP request body, a chunk of a simulation, a page of a
stream):

1. one query finds the generations the batch's outcomes name (``events.inherit``), one the
   experiments the batch names, directly or through those generations (tenant-scoped);
2. events are validated in chunks (pydantic, a list at a time: fast when all are good),
   completed from the generation they name, then checked against their experiment (it
   exists, has started, has that arm);
3. the survivors stream into the store as they are validated, so on PostgreSQL the
   server writes one chunk while Python validates the next; keys already stored are
   skipped, not counted twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine

from tuneloop.domain.experiments import ExperimentStatus
from tuneloop.events.inherit import Links, inherit, linked_generations
from tuneloop.events.schema import EventIn, Rejection, rejections
from tuneloop.store.events import WriteMethod, insert_events
from tuneloop.store.experiments import experiments_by_key
from tuneloop.store.types import utcnow

_EVENTS = TypeAdapter(list[EventIn])
CHUNK = 1000  # events validated at a time while the previous chunk is being written

Arms = dict[str, frozenset[str] | None]  # experiment key -> its arms (None: not started)


@dataclass
class IngestReport:
    """What happened to a batch: stored, already known, refused (with every reason)."""

    received: int
    accepted: int = 0
    duplicates: int = 0
    problems: list[Rejection] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len({problem.index for problem in self.problems})

    def to_json(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": [
                {"index": p.index, "field": p.field, "reason": p.reason} for p in self.problems
            ],
        }


def ingest_events(
    engine: Engine,
    tenant_id: str,
    events: Sequence[Any],
    *,
    method: WriteMethod = "auto",
    now: datetime | None = None,
) -> IngestReport:
    """Validate and store a batch of raw events (dicts, e.g. parsed JSON) for ``tenant_id``."""
    report = IngestReport(received=len(events))
    links = linked_generations(engine, tenant_id, events)
    arms = _experiment_arms(engine, tenant_id, events, links)
    received_at = now or utcnow()
    rows = (
        _row(tenant_id, event, received_at)
        for event in _valid_events(events, links, arms, report.problems)
    )
    written = insert_events(engine, rows, method=method)
    report.accepted, report.duplicates = written.inserted, written.duplicates
    report.problems.sort(key=lambda problem: problem.index)
    return report


def _experiment_arms(engine: Engine, tenant_id: str, events: Sequence[Any], links: Links) -> Arms:
    """The arms of every experiment the batch names, read once (before validation)."""
    return read_arms(engine, tenant_id, named_experiments(events, links))


def named_experiments(events: Sequence[Any], links: Links) -> set[str]:
    """The experiment keys the batch names, directly or through the generations it names."""
    keys = {
        key
        for event in events
        if isinstance(event, dict) and isinstance(key := event.get("experiment_key"), str)
    }
    return keys | {link.experiment_key for link in links.values() if link.experiment_key}


def read_arms(engine: Engine, tenant_id: str, keys: set[str]) -> Arms:
    """The tenant's experiments among ``keys``: their arms, or None for a draft."""
    found = experiments_by_key(engine, tenant_id, keys)
    return {
        key: None
        if row.status == ExperimentStatus.DRAFT
        else frozenset(arm["name"] for arm in row.arms)
        for key, row in found.items()
    }


def _valid_events(
    events: Sequence[Any], links: Links, arms: Arms, problems: list[Rejection]
) -> Iterator[EventIn]:
    for start in range(0, len(events), CHUNK):
        for index, valid in validate_events(events[start : start + CHUNK], problems, start):
            event = inherit(valid, links)
            if isinstance(event, tuple):
                problems.append(Rejection(index, *event))
                continue
            reason = _experiment_problem(event, arms)
            if reason is None:
                yield event
            else:
                problems.append(Rejection(index, *reason))


def validate_events(
    events: Sequence[Any], problems: list[Rejection], offset: int = 0
) -> list[tuple[int, EventIn]]:
    """The valid events with their index (plus ``offset``); bad fields are added to problems."""
    try:
        return list(enumerate(_EVENTS.validate_python(events), start=offset))
    except ValidationError as exc:
        found = rejections(exc, offset=offset)
    problems.extend(found)
    bad = {problem.index - offset for problem in found}
    good = [index for index in range(len(events)) if index not in bad]
    # Events validate independently, so the rest of the list passes on its own.
    valid = _EVENTS.validate_python([events[index] for index in good])
    return [(index + offset, event) for index, event in zip(good, valid, strict=True)]


def _experiment_problem(event: EventIn, arms: Arms) -> tuple[str, str] | None:
    key = event.experiment_key
    if key is None:
        return None
    if key not in arms:
        return "experiment_key", f"no experiment {key!r}"
    known = arms[key]
    if known is None:
        return "experiment_key", f"experiment {key!r} is a draft: start it first"
    if event.arm not in known:
        return (
            "arm",
            f"experiment {key!r} has no arm {event.arm!r} (arms: {', '.join(sorted(known))})",
        )
    return None


def _row(tenant_id: str, event: EventIn, received_at: datetime) -> tuple[Any, ...]:
    """The row in ``store.events.COLUMNS`` order."""
    return (
        tenant_id,
        event.idempotency_key,
        event.experiment_key,
        event.unit_id,
        event.arm,
        event.model_id,
        event.post_id,
        event.generation_id,
        event.kind.value,
        event.engagement,
        event.tokens,
        event.cost,
        event.latency_ms,
        event.error,
        event.ts or received_at,  # not stamped at the edge (written directly): now
        received_at,
    )
