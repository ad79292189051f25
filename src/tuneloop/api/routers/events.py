"""``/v1/events``: batched exposure, generation and outcome events, accepted into the stream."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, status
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from tuneloop.api.auth import admit
from tuneloop.api.bodies import json_body, read_body
from tuneloop.api.resources import resources_of
from tuneloop.api.schemas.common import AUTHENTICATED_RESPONSES, BODY_RESPONSES
from tuneloop.api.schemas.events import EventsBatchIn, EventsBatchOut
from tuneloop.app.events import accept_batch, names_a_generation
from tuneloop.domain.keys import Role

router = APIRouter(prefix="/v1/events", tags=["events"], responses=AUTHENTICATED_RESPONSES)


@router.post(
    "",
    response_model=EventsBatchOut,
    responses=BODY_RESPONSES,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Record a batch of events",
    openapi_extra={"requestBody": json_body(EventsBatchIn)},
)
async def post_events(request: Request) -> Response:
    """Each event is validated on its own: good ones are appended to the durable event
    stream (the answer comes once they are durable; a consumer writes them to the events
    table within moments: `/health` shows its lag), an idempotency key already stored or
    repeated in the batch counts as a duplicate, and refused ones come back in `errors`
    with their index, field and reason. The answer is 202 even when some were refused;
    more events than `api.max_batch_size` is a 422. An outcome may name only its
    `generation_id`: it inherits unit, model, experiment and arm from that generation.
    An event without `ts` is stamped with the server's clock as it is accepted."""
    # A hot endpoint: no FastAPI parameters (nothing to solve per request), the body parsed
    # by pydantic-core, the answer encoded by orjson; same 401/403/429 and 422 answers as a
    # route with ``Operator`` and an ``EventsBatchIn`` body (bench/api.py measures it).
    principal = await admit(request, Role.OPERATOR)
    batch = await read_body(request, EventsBatchIn)
    resources = resources_of(request.app)
    serving = getattr(request.app.state, "serving", None)
    flush = None
    if serving is not None and any(names_a_generation(event) for event in batch.events):
        flush = lambda: serving.recorder.flush(5.0)  # noqa: E731
    report = await run_in_threadpool(
        accept_batch,
        resources.engine,
        resources.events,
        principal.tenant_id,
        batch.events,
        max_batch=resources.settings.api.max_batch_size,
        consumer=resources.consumer,
        flush_generations=flush,
        now=resources.container.clock.now(),
        arms=resources.started_arms,
    )
    answer = report.to_json() | {"queued": report.accepted}
    return Response(
        orjson.dumps(answer), status_code=status.HTTP_202_ACCEPTED, media_type="application/json"
    )
