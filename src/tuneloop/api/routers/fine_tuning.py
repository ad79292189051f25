"""``/fine-tuning``: start a pipeline run in the background, follow it, abort it, list runs.

The runs execute in worker threads owned by the app (``api.run_workers``; this
router's lifespan keeps their registry and stops them at shutdown).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from tuneloop.api.auth import Operator, Viewer
from tuneloop.api.resources import ResourcesDep
from tuneloop.api.run_workers import WorkersDep, run_workers_lifespan
from tuneloop.api.schemas.common import (
    AUTHENTICATED_RESPONSES,
    BODY_RESPONSES,
    ErrorResponse,
    PageLimit,
    PageOffset,
)
from tuneloop.api.schemas.fine_tuning import (
    AbortIn,
    AbortOut,
    RunPageOut,
    StartIn,
    StartOut,
    StatusOut,
    status_json,
)
from tuneloop.app import runs

router = APIRouter(
    prefix="/fine-tuning",
    tags=["fine-tuning"],
    responses=AUTHENTICATED_RESPONSES,
    lifespan=run_workers_lifespan,
)

_BUSY: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "A run is already active for the tenant."}
}
_FINISHED: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "The run has already finished."}
}

PipelineId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The run's id, e.g. `ft-pipeline-20250102-001`.",
    ),
]

START_DESCRIPTION = """
Starts a pipeline run (collect → train → register → evaluate → experiment → decide →
rollout; it waits, holding no process, while its A/B test and rollout run) in the background and
answers at once with `status` "started" and what is known so far (nulls for what is not).
Follow it with `GET /fine-tuning/status/{pipeline_id}`.

If the tenant's previous run crashed (nobody executes it), waits (for its A/B test or
rollout: this checks it once more) or failed, this **continues that run** from its last
finished step instead of starting a new one, with the configuration it was started with:
`continued` is true and this request's `config` and `force_run` are not used. `"new": true`
starts a new run even after a failed one (the way out of a run that keeps failing).
Starting while a run is executing answers 409 naming it. `force_run` runs even below the
data threshold, and even on the data the champion was trained on.
"""


@router.post(
    "/start",
    status_code=202,
    responses=BODY_RESPONSES | _BUSY,
    summary="Start (or continue) a pipeline run in the background",
    description=START_DESCRIPTION,
)
def start(
    principal: Operator,
    resources: ResourcesDep,
    workers: WorkersDep,
    body: StartIn | None = None,
) -> StartOut:
    request = body or StartIn()
    started = runs.start_or_continue(
        resources.container,
        tenant=principal.tenant_id,
        trigger="manual",
        force=request.force_run,
        new=request.new,
        config=request.config.overrides(),
        background=True,
        runner=workers,
    )
    return StartOut.of(started.view)


@router.get(
    "/status/{pipeline_id}",
    response_model=StatusOut,
    summary="A run's progress, metrics and estimate",
)
def status(
    principal: Viewer, resources: ResourcesDep, workers: WorkersDep, pipeline_id: PipelineId
) -> Response:
    view = runs.status(
        resources.container, tenant=principal.tenant_id, pipeline_id=pipeline_id, runner=workers
    )
    # Encoded once, from the view, by pydantic's serializer: FastAPI would build and validate
    # a StatusOut, then encode it with the standard library (bench/api.py).
    return Response(status_json(view), media_type="application/json")


@router.post(
    "/abort/{pipeline_id}",
    responses=BODY_RESPONSES | _FINISHED,
    summary="Abort an active run and clean up after it",
    description="Asks the run to stop and waits (up to a minute) for its cleanup. A run that "
    "has already finished answers 409.",
)
def abort(
    principal: Operator,
    resources: ResourcesDep,
    pipeline_id: PipelineId,
    body: AbortIn | None = None,
) -> AbortOut:
    reason = (body or AbortIn()).reason
    report = runs.abort(
        resources.container, tenant=principal.tenant_id, pipeline_id=pipeline_id, reason=reason
    )
    return AbortOut.of(report)


@router.get("/runs", summary="List pipeline runs, newest first")
def list_runs(
    principal: Viewer,
    resources: ResourcesDep,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> RunPageOut:
    return RunPageOut.of(
        runs.run_page(resources.container, tenant=principal.tenant_id, limit=limit, offset=offset)
    )
