"""What ``POST /v1/events`` calls: the batch limit, then the ingestion service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from tuneloop.errors import InvalidInputError, Problem
from tuneloop.events.ingest import IngestReport, ingest_events


def ingest_batch(
    engine: Engine, tenant_id: str, events: Sequence[Any], *, max_batch: int
) -> IngestReport:
    if len(events) > max_batch:
        raise InvalidInputError(
            f"a batch holds at most {max_batch} events; this one has {len(events)}",
            [Problem("body.events", f"at most {max_batch} items")],
        )
    return ingest_events(engine, tenant_id, events)
