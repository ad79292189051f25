"""Run use cases: start-or-continue, abort, status, advance waiting runs, tick rollouts.

The one place that knows how a run is started or continued; the CLI, the API, the demo
and the worker call these functions and only parse input and format answers. Every
function takes the ``Container`` (``tuneloop.wiring``) and the caller's tenant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from tuneloop.app.background import RunWorkers, Worker
from tuneloop.app.status import start_view, status_view
from tuneloop.app.views import Page, RunView, StatusView
from tuneloop.domain.runs import RunStatus
from tuneloop.errors import ConflictError, InvalidStateError
from tuneloop.pipeline.context import Reporter, RunContext
from tuneloop.pipeline.lease import owner_is_alive
from tuneloop.pipeline.loop import LOOP_STEPS
from tuneloop.pipeline.runner import execute
from tuneloop.pipeline.service import (
    AbortReport,
    abort_run,
    context_for,
    resumable_run,
    start_run,
)
from tuneloop.pipeline.steps import STEP_FUNCTIONS
from tuneloop.rollout.manager import TickOutcome
from tuneloop.store import runs as repo
from tuneloop.store.models_registry import model_versions_page
from tuneloop.store.pipeline_models import PipelineRun, PipelineStep
from tuneloop.store.run_snapshot import run_snapshot
from tuneloop.store.schedules import set_cron
from tuneloop.store.types import utcnow
from tuneloop.wiring import Container

log = logging.getLogger(__name__)

DISABLED = (
    "fine-tuning is disabled (pipeline.enabled = false, FINE_TUNING_ENABLED=false): "
    "no new run starts until it is enabled again"
)

# The runs this process executes in the background when the caller brings no registry.
_DEFAULT_RUNNER = RunWorkers()


@dataclass(frozen=True)
class Started:
    """What ``start_or_continue`` did: the run, whether it was continued, and how it stands.

    ``status`` is the run's status when the call returned: its final (or ``waiting``)
    status in the foreground, its status at launch in the background.
    """

    run: PipelineRun
    continued: bool
    status: RunStatus
    view: RunView
    worker: Worker | None = None


def start_or_continue(
    container: Container,
    *,
    tenant: str,
    trigger: str = "manual",
    force: bool = False,
    new: bool = False,
    config: dict[str, Any] | None = None,
    background: bool = False,
    runner: RunWorkers | None = None,
    report: Reporter | None = None,
    around: Callable[[RunContext], AbstractContextManager[Any]] | None = None,
) -> Started:
    """Continue the tenant's unfinished run (crashed, waiting, or failed unless ``new``), or
    start one, recording ``trigger``; execute it here, or in a thread when ``background``.

    ``config`` holds the documented run overrides (``training_data_threshold``...) and is
    used only by a new run: a continued run keeps the configuration it was started with.
    With ``pipeline.enabled`` false no new run starts (InvalidStateError); a continued one may.
    ``around`` wraps the foreground execution (the CLI's signal handlers).
    """
    workers = runner or _DEFAULT_RUNNER
    with workers.start_lock:  # one start at a time in this process: no double launch
        busy = workers.live_for_tenant(tenant)
        if busy is not None:
            raise ConflictError(
                f"run {busy.run_id} is already active for tenant {tenant!r}; "
                "abort it or let it finish"
            )
        existing = resumable_run(container.engine, tenant, include_failed=not new)
        if existing is None and not container.settings.pipeline.enabled:
            # The kill switch stops new runs; one already under way may still finish.
            raise InvalidStateError(DISABLED)
        run = existing or start_run(
            container.engine,
            container.settings,
            tenant,
            trigger=trigger,
            overrides=config,
            force_run=force,
            now=container.clock.now(),
        )
        if config and config.get("weekly_schedule"):  # checked cron: the tenant's from now on
            set_cron(container.engine, tenant, config["weekly_schedule"], now=container.clock.now())
        if background:
            if run.status == RunStatus.FAILED:
                # Reopen it before answering: a status read right after the answer must not
                # see the old, finished "failed" (the thread may not have started yet).
                run = repo.move_run(container.engine, tenant, run.id, RunStatus.RUNNING, error=None)
            worker = workers.launch(container, run)
            view = start_view(
                run_snapshot(container.engine, tenant, run.id), continued=existing is not None
            )
            return Started(run, existing is not None, RunStatus(run.status), view, worker)
    ctx = context_for(container.engine, container.settings, run, report, services=container)
    with around(ctx) if around is not None else nullcontext():
        status = execute(ctx, STEP_FUNCTIONS)
    view = start_view(
        run_snapshot(container.engine, tenant, run.id), continued=existing is not None
    )
    return Started(
        repo.get_run(container.engine, tenant, run.id), existing is not None, status, view
    )


def abort(
    container: Container,
    *,
    tenant: str,
    pipeline_id: str,
    reason: str = "user_requested",
    wait_seconds: float = 60.0,
) -> AbortReport:
    """Stop an active run and undo what it left: its job, files, A/B test or rollout.

    A waiting run has no executor: its experiment is stopped (or its deployment rolled
    back) here, and ``resources_cleaned`` names what was undone.
    """
    return abort_run(
        container.engine,
        container.settings,
        tenant,
        pipeline_id,
        services=container,
        reason=reason,
        wait_seconds=wait_seconds,
    )


def status(
    container: Container, *, tenant: str, pipeline_id: str, runner: RunWorkers | None = None
) -> StatusView:
    """The run's documented status from one transaction; NotFoundError outside the tenant."""
    snapshot = run_snapshot(container.engine, tenant, pipeline_id)
    live = (runner or _DEFAULT_RUNNER).get(tenant, pipeline_id)
    return status_view(snapshot, live=live, now=container.clock.now())


def active_run(container: Container, *, tenant: str) -> PipelineRun | None:
    """The tenant's active run (pending, running, waiting or aborting), if any."""
    return repo.active_run(container.engine, tenant)


@dataclass(frozen=True)
class Advanced:
    tenant_id: str
    run_id: str
    status: str  # after the check: waiting, promoted, rolled_back, rejected...
    step: str | None


def advance_runs(container: Container) -> list[Advanced]:
    """Check every waiting run of every tenant once (its A/B test, its rollout).

    Idempotent and cheap: a run that is still waiting goes back to ``waiting``; one that
    somebody else is checking right now is left to them. A run whose check crashed (left
    ``running`` in a waiting step, its lease expired) is picked up again too; a run that
    crashed while training is not (continuing it is a start's job). Safe to call every few
    seconds from the worker's leader.
    """
    done: list[Advanced] = []
    candidates = repo.runs_with_status(container.engine, RunStatus.WAITING)
    candidates += repo.runs_with_status(container.engine, RunStatus.RUNNING)
    now = utcnow()
    for tenant, run_id in candidates:
        run = repo.get_run(container.engine, tenant, run_id)
        if run.status == RunStatus.RUNNING and (
            run.current_step not in LOOP_STEPS
            or (run.lease_owner and owner_is_alive(run.lease_owner, run.heartbeat_at, now))
        ):
            continue  # being executed, or crashed before the waiting steps
        if run.status not in (RunStatus.WAITING, RunStatus.RUNNING):
            continue  # moved on since the listing
        ctx = context_for(container.engine, container.settings, run, services=container)
        try:
            final = execute(ctx, STEP_FUNCTIONS, poll_seconds=0.2)
        except ConflictError:  # another process is checking it
            continue
        except Exception:
            log.exception("advancing run %s of tenant %s failed", run_id, tenant)
            continue
        after = repo.get_run(container.engine, tenant, run_id)
        done.append(Advanced(tenant, run_id, str(final), after.current_step))
    return done


def tick_rollouts(
    container: Container, *, tenant: str | None = None, actor: str = "tick"
) -> list[TickOutcome]:
    """One tick of every active deployment (of one tenant, or all) at the container's clock."""
    return container.deployments.tick(tenant, actor=actor, now=container.clock.now())


def run_page(container: Container, *, tenant: str, limit: int, offset: int) -> Page:
    rows, total = repo.list_runs(container.engine, tenant, limit=limit, offset=offset)
    return Page(rows, total, limit, offset)


def list_runs(
    engine: Engine,
    tenant: str,
    *,
    limit: int = 50,
    offset: int = 0,
    status: str | None = None,
) -> tuple[Sequence[PipelineRun], int]:
    """A page of the tenant's runs (of one status when given), newest first, and the total."""
    return repo.list_runs(engine, tenant, limit=limit, offset=offset, status=status)


def get_run(engine: Engine, tenant: str, run_id: str) -> PipelineRun:
    """One run; NotFoundError outside the tenant."""
    return repo.get_run(engine, tenant, run_id)


def steps_of(engine: Engine, tenant: str, run_id: str) -> list[PipelineStep]:
    """The run's steps in order, each with its stored output."""
    return repo.steps_of(engine, tenant, run_id)


def model_page(container: Container, *, tenant: str, limit: int, offset: int) -> Page:
    rows, total = model_versions_page(container.engine, tenant, limit=limit, offset=offset)
    return Page(rows, total, limit, offset)
