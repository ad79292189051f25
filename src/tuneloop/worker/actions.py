"""What the worker does to the loop, behind one small port: ``LoopActions``.

The worker decides *when*; these act. ``AppActions`` binds the port to the application
layer (``tuneloop.app.runs``), the same functions the CLI and the API call: runs start or
continue in a background thread of this process so a tick never waits on training, waiting
runs are re-checked (their A/B test, their rollout) and rollouts ticked at the container's
clock.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from tuneloop.app import runs as app_runs
from tuneloop.app.background import RunWorkers
from tuneloop.domain.runs import RunStatus, Trigger
from tuneloop.domain.tenants import DEFAULT_TENANT
from tuneloop.errors import ConflictError
from tuneloop.pipeline.lease import STALE_AFTER
from tuneloop.pipeline.service import resumable_run
from tuneloop.store.deployments import active_deployment_ids
from tuneloop.store.pipeline_models import PipelineRun
from tuneloop.store.schedules import known_tenants
from tuneloop.wiring import Container

log = logging.getLogger(__name__)


class LoopActions(Protocol):
    """The worker's only way to act on the loop."""

    def tenants(self) -> list[str]:
        """Every tenant whose schedule and triggers the worker checks."""
        ...

    def active_run_id(self, tenant: str) -> str | None:
        """The tenant's active run (running, waiting...), if any: it blocks a new start."""
        ...

    def start_run(self, tenant: str, trigger: Trigger) -> str:
        """Start a run in the background and return its id; ConflictError if one is active."""
        ...

    def advance_runs(self) -> int:
        """Move every run that waits (or that nobody executes) one step on; how many moved."""
        ...

    def tick_rollouts(self) -> int:
        """Tick every active deployment once; how many were ticked."""
        ...

    def close(self, *, interrupt: bool = True) -> None:
        """Stop what was started in the background, keeping it resumable (or, with
        ``interrupt=False``, wait for it to finish)."""
        ...


def _just_created(run: PipelineRun, now: datetime) -> bool:
    """A pending run younger than a heartbeat's staleness is its starter's to launch (the
    API or the CLI takes its lease a moment after creating it): leave it alone."""
    return run.status == RunStatus.PENDING and now - run.created_at < STALE_AFTER


class AppActions:
    """``LoopActions`` over the application layer, for one container (store, clock...)."""

    def __init__(self, container: Container, *, runner: RunWorkers | None = None) -> None:
        self.container = container
        self.runner = runner or RunWorkers()

    def tenants(self) -> list[str]:
        return known_tenants(self.container.engine, always=(DEFAULT_TENANT,))

    def active_run_id(self, tenant: str) -> str | None:
        run = app_runs.active_run(self.container, tenant=tenant)
        return None if run is None else run.id

    def start_run(self, tenant: str, trigger: Trigger) -> str:
        started = app_runs.start_or_continue(
            self.container,
            tenant=tenant,
            trigger=trigger.value,
            new=True,  # a scheduled or triggered start never re-tries an old failure
            background=True,
            runner=self.runner,
        )
        return started.run.id

    def advance_runs(self) -> int:
        """Re-check waiting runs, then continue active runs nobody executes (a killed
        worker's training): each tenant's one run moves on, once."""
        moved = len(app_runs.advance_runs(self.container))
        for tenant in self.tenants():
            if self.runner.live_for_tenant(tenant) is not None:
                continue
            try:
                run = resumable_run(self.container.engine, tenant, include_failed=False)
            except ConflictError:  # somebody alive executes it
                continue
            if (
                run is None
                or run.status == RunStatus.WAITING
                or _just_created(run, self.container.clock.now())
            ):
                continue
            try:
                app_runs.start_or_continue(
                    self.container,
                    tenant=tenant,
                    trigger=run.trigger,
                    background=True,
                    runner=self.runner,
                )
            except ConflictError:  # taken by another process between the check and here
                continue
            moved += 1
        return moved

    def tick_rollouts(self) -> int:
        if not active_deployment_ids(self.container.engine):  # no tracker built for nothing
            return 0
        return len(app_runs.tick_rollouts(self.container, actor="worker"))

    def close(self, *, interrupt: bool = True) -> None:
        if interrupt:
            self.runner.shutdown()
            return
        self.runner.wait()
