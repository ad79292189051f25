"""``/fine-tuning``: start a pipeline run in the background, follow it, abort it, list runs.

The runs execute in worker threads owned by the app (``services.run_workers``; this
router's lifespan keeps their registry and stops them at shutdown).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from tuneloop.api.auth import Operator, Viewer
from tuneloop.api.resources import ResourcesDep
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
)
from tuneloop.api.services.fine_tuning import (
    abort_pipeline,
    run_page,
    run_status,
    start_pipeline,
)
from tuneloop.api.services.run_workers import WorkersDep, run_workers_lifespan

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
Starts a pipeline run (collect → train → register → evaluate) in the background and
answers at once with `status` "started" and what is known so far (nulls for what is not).
Follow it with `GET /fine-tuning/status/{pipeline_id}`.

If the tenant's previous run crashed (nobody executes it) or failed, this **continues
that run** from its last finished step instead of starting a new one, with the
configuration it was started with: `continued` is true and this request's `config` and
`force_run` are not used. Starting while a run is executing answers 409 naming it.
`force_run` runs even below the data threshold.
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
    view = start_pipeline(
        resources.engine,
        resources.settings,
        principal.tenant_id,
        workers=workers,
        overrides=request.config.overrides(),
        force_run=request.force_run,
    )
    return StartOut.of(view)


@router.get("/status/{pipeline_id}", summary="A run's progress, metrics and estimate")
def status(
    principal: Viewer, resources: ResourcesDep, workers: WorkersDep, pipeline_id: PipelineId
) -> StatusOut:
    view = run_status(resources.engine, principal.tenant_id, pipeline_id, workers=workers)
    return StatusOut.of(view)


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
    report = abort_pipeline(
        resources.engine, resources.settings, principal.tenant_id, pipeline_id, reason=reason
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
        run_page(resources.engine, principal.tenant_id, limit=limit, offset=offset)
    )
