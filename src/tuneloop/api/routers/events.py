"""``/v1/events``: batched exposure, generation and outcome events with per-event errors."""

from __future__ import annotations

from fastapi import APIRouter, Request

from tuneloop.api.auth import Operator
from tuneloop.api.resources import ResourcesDep
from tuneloop.api.schemas.common import AUTHENTICATED_RESPONSES, BODY_RESPONSES
from tuneloop.api.schemas.events import EventsBatchIn, EventsBatchOut
from tuneloop.api.services.events import ingest_batch

router = APIRouter(prefix="/v1/events", tags=["events"], responses=AUTHENTICATED_RESPONSES)


@router.post("", responses=BODY_RESPONSES, summary="Record a batch of events")
def post_events(
    batch: EventsBatchIn, principal: Operator, resources: ResourcesDep, request: Request
) -> EventsBatchOut:
    """Each event is validated on its own: good ones are stored, an idempotency key already
    stored counts as a duplicate (stored once), and refused ones come back in `errors` with
    their index, field and reason. The answer is 200 even when some were refused; more
    events than `api.max_batch_size` is a 422. An outcome may name only its
    `generation_id`: it inherits unit, model, experiment and arm from that generation."""
    serving = getattr(request.app.state, "serving", None)
    report = ingest_batch(
        resources.engine,
        principal.tenant_id,
        batch.events,
        max_batch=resources.settings.api.max_batch_size,
        flush_generations=None if serving is None else lambda: serving.recorder.flush(5.0),
    )
    return EventsBatchOut.model_validate(report.to_json())
