"""``/v1/events``: batched exposure, generation and outcome events, accepted into the stream."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from tuneloop.api.auth import Operator
from tuneloop.api.resources import ResourcesDep
from tuneloop.api.schemas.common import AUTHENTICATED_RESPONSES, BODY_RESPONSES
from tuneloop.api.schemas.events import EventsBatchIn, EventsBatchOut
from tuneloop.app.events import accept_batch

router = APIRouter(prefix="/v1/events", tags=["events"], responses=AUTHENTICATED_RESPONSES)


@router.post(
    "",
    responses=BODY_RESPONSES,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Record a batch of events",
)
def post_events(
    batch: EventsBatchIn, principal: Operator, resources: ResourcesDep, request: Request
) -> EventsBatchOut:
    """Each event is validated on its own: good ones are appended to the durable event
    stream (the answer comes once they are durable; a consumer writes them to the events
    table within moments: `/health` shows its lag), an idempotency key already stored or
    repeated in the batch counts as a duplicate, and refused ones come back in `errors`
    with their index, field and reason. The answer is 202 even when some were refused;
    more events than `api.max_batch_size` is a 422. An outcome may name only its
    `generation_id`: it inherits unit, model, experiment and arm from that generation.
    An event without `ts` is stamped with the server's clock as it is accepted."""
    serving = getattr(request.app.state, "serving", None)
    report = accept_batch(
        resources.engine,
        resources.events,
        principal.tenant_id,
        batch.events,
        max_batch=resources.settings.api.max_batch_size,
        consumer=resources.consumer,
        flush_generations=None if serving is None else lambda: serving.recorder.flush(5.0),
        now=resources.container.clock.now(),
    )
    return EventsBatchOut.model_validate(report.to_json() | {"queued": report.accepted})
