"""What ``POST /v1/events`` calls: the batch limit, then the ingestion service."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine

from tuneloop.errors import InvalidInputError, Problem
from tuneloop.events.ingest import IngestReport, ingest_events


def ingest_batch(
    engine: Engine,
    tenant_id: str,
    events: Sequence[Any],
    *,
    max_batch: int,
    flush_generations: Callable[[], object] | None = None,
) -> IngestReport:
    """``flush_generations`` writes the generations this process served but has not stored
    yet, so an outcome sent right after its call finds the generation it names."""
    if len(events) > max_batch:
        raise InvalidInputError(
            f"a batch holds at most {max_batch} events; this one has {len(events)}",
            [Problem("body.events", f"at most {max_batch} items")],
        )
    if flush_generations is not None and any(_names_a_generation(e) for e in events):
        flush_generations()
    return ingest_events(engine, tenant_id, events)


def _names_a_generation(event: Any) -> bool:
    return isinstance(event, dict) and bool(event.get("generation_id"))
