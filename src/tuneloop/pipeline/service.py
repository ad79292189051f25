"""Starting, continuing and aborting runs: the pipeline's half of ``tuneloop.app.runs``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.domain.runs import ACTIVE, RunStatus, Trigger
from tuneloop.errors import ConflictError, InvalidStateError
from tuneloop.pipeline.cleanup import clean_run
from tuneloop.pipeline.context import Reporter, RunContext, StageServices
from tuneloop.pipeline.lease import owner_is_alive
from tuneloop.store import runs as repo
from tuneloop.store.pipeline_models import PipelineRun
from tuneloop.store.types import utcnow

# The run-level knobs a caller may override (the documented /fine-tuning/start "config").
RUN_OVERRIDES = (
    "training_data_threshold",
    "engagement_threshold",
    "weekly_schedule",
    "a_b_test_duration_hours",
    "days_back",
    "max_records",
)


def run_config(
    settings: Settings, *, overrides: dict[str, Any] | None = None, force_run: bool = False
) -> dict[str, Any]:
    """The run's frozen configuration: stored with it, so a continued run uses the same."""
    pipeline = settings.pipeline.model_dump() | {
        key: value
        for key, value in (overrides or {}).items()
        if key in RUN_OVERRIDES and value is not None
    }
    return {
        "pipeline": pipeline,
        "dataset": settings.dataset.model_dump(),
        "training": settings.training.model_dump(),
        "evaluation": settings.evaluation.model_dump(),
        "force_run": force_run,
    }


def settings_for_run(settings: Settings, config: dict[str, Any]) -> Settings:
    """Deployment settings with the run's frozen sections laid over them."""
    update: dict[str, Any] = {
        name: getattr(settings, name).model_validate(config[name])
        for name in ("pipeline", "dataset", "training", "evaluation")
        if name in config
    }
    return settings.model_copy(update=update)


def start_run(
    engine: Engine,
    settings: Settings,
    tenant_id: str,
    *,
    trigger: Trigger | str = Trigger.MANUAL,
    overrides: dict[str, Any] | None = None,
    force_run: bool = False,
    now: datetime | None = None,
) -> PipelineRun:
    """Create a pending run (ConflictError if one is active for the tenant), stamped ``now``
    (the caller's clock; default the wall clock)."""
    config = run_config(settings, overrides=overrides, force_run=force_run)
    return repo.create_run(
        engine,
        tenant_id,
        trigger=str(trigger),
        config=config | {"trigger": str(trigger)},
        now=now,
    )


def resumable_run(
    engine: Engine, tenant_id: str, *, include_failed: bool = True
) -> PipelineRun | None:
    """The run ``tuneloop run`` should continue instead of starting over.

    That is the tenant's active run when nobody executes it (crashed, killed, never
    started), or else its latest run when that one failed (a step raised: MLflow was down,
    the disk was full); its finished steps are kept, so training is not redone.
    """
    run = repo.active_run(engine, tenant_id)
    if run is None:
        latest, _ = repo.list_runs(engine, tenant_id, limit=1)
        return (
            latest[0]
            if include_failed and latest and latest[0].status == RunStatus.FAILED
            else None
        )
    if run.lease_owner is not None and owner_is_alive(run.lease_owner, run.heartbeat_at, utcnow()):
        raise ConflictError(
            f"run {run.id} is already active for tenant {tenant_id!r} "
            f"and being executed by {run.lease_owner}"
        )
    return run


def context_for(
    engine: Engine,
    settings: Settings,
    run: PipelineRun,
    report: Reporter | None = None,
    *,
    services: StageServices,
) -> RunContext:
    ctx = RunContext(
        settings=settings_for_run(settings, run.config),
        engine=engine,
        tenant_id=run.tenant_id,
        run_id=run.id,
        config=run.config,
        services=services,
    )
    if report is not None:
        ctx.report = report
    return ctx


@dataclass(frozen=True)
class AbortReport:
    run_id: str
    status: str
    cleanup_status: str
    reason: str
    resources_cleaned: list[str]


def abort_run(
    engine: Engine,
    settings: Settings,
    tenant_id: str,
    run_id: str,
    *,
    services: StageServices,
    reason: str = "user_requested",
    wait_seconds: float = 60.0,
) -> AbortReport:
    """Ask the executor to stop and wait for its cleanup; clean up ourselves if nobody runs it."""
    run = repo.get_run(engine, tenant_id, run_id)
    if run.status not in {s.value for s in ACTIVE}:
        raise InvalidStateError(f"run {run_id} is {run.status}; only an active run can be aborted")
    repo.request_abort(engine, tenant_id, run_id, reason=reason)
    if run.lease_owner is not None and owner_is_alive(run.lease_owner, run.heartbeat_at, utcnow()):
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            run = repo.get_run(engine, tenant_id, run_id)
            if run.status == RunStatus.ABORTED:
                cleanup = run.cleanup or {}
                return AbortReport(
                    run_id,
                    "aborted",
                    cleanup.get("status", "completed"),
                    reason,
                    cleanup.get("resources_cleaned", []),
                )
            if run.status not in {s.value for s in ACTIVE}:  # its last step beat the abort
                raise InvalidStateError(
                    f"run {run_id} finished {run.status} before the abort took effect"
                )
            time.sleep(0.2)
        return AbortReport(run_id, "aborting", "pending", reason, [])
    cleaned = clean_run(context_for(engine, settings, run, services=services))
    if run.status == RunStatus.PENDING:
        repo.move_run(
            engine,
            tenant_id,
            run_id,
            RunStatus.ABORTED,
            finished_at=utcnow(),
            cleanup={"status": "completed", "resources_cleaned": cleaned, "reason": reason},
        )
    else:
        repo.move_run(engine, tenant_id, run_id, RunStatus.ABORTING)
        repo.move_run(
            engine,
            tenant_id,
            run_id,
            RunStatus.ABORTED,
            finished_at=utcnow(),
            lease_owner=None,
            cleanup={"status": "completed", "resources_cleaned": cleaned, "reason": reason},
        )
    return AbortReport(run_id, "aborted", "completed", reason, cleaned)
