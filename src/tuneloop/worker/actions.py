"""What the worker does to the loop, behind one small port: ``LoopActions``.

The worker decides *when*; these act. ``PipelineActions`` binds the port to what exists
today: runs are created and executed by the pipeline service and step runner (``tuneloop
run``), each in a background thread so a tick never waits on training, and rollouts are
ticked by the deployment manager (``tuneloop rollout tick``). When the application layer
(``tuneloop.app.runs``) lands, an implementation that calls it replaces this one; the
worker itself does not change.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine

from tuneloop.config import DEFAULT_TENANT, Settings
from tuneloop.domain.clock import Clock
from tuneloop.domain.runs import RunStatus, Trigger
from tuneloop.errors import ConflictError
from tuneloop.pipeline.context import RunContext
from tuneloop.pipeline.lease import STALE_AFTER
from tuneloop.pipeline.runner import execute
from tuneloop.pipeline.service import context_for, resumable_run, run_config
from tuneloop.pipeline.steps import STEP_FUNCTIONS
from tuneloop.store import runs as runs_repo
from tuneloop.store.deployments import active_deployment_ids
from tuneloop.store.pipeline_models import PipelineRun
from tuneloop.store.schedules import known_tenants
from tuneloop.store.types import utcnow

if TYPE_CHECKING:
    from tuneloop.rollout.manager import DeploymentManager

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


def _just_created(run: PipelineRun) -> bool:
    """A pending run younger than a heartbeat's staleness is its starter's to launch (the
    API or the CLI takes its lease a moment after creating it): leave it alone."""
    return run.status == RunStatus.PENDING and utcnow() - run.created_at < STALE_AFTER


class PipelineActions:
    """``LoopActions`` over the pipeline runner and the deployment manager of this tree."""

    def __init__(self, engine: Engine, settings: Settings, *, clock: Clock) -> None:
        self.engine, self.settings, self.clock = engine, settings, clock
        self._lock = threading.Lock()
        self._running: dict[str, tuple[threading.Thread, RunContext]] = {}
        self._manager: DeploymentManager | None = None

    def tenants(self) -> list[str]:
        return known_tenants(self.engine, always=(DEFAULT_TENANT,))

    def active_run_id(self, tenant: str) -> str | None:
        run = runs_repo.active_run(self.engine, tenant)
        return None if run is None else run.id

    def start_run(self, tenant: str, trigger: Trigger) -> str:
        config = run_config(self.settings)
        run = runs_repo.create_run(
            self.engine, tenant, trigger=trigger.value, config=config, now=self.clock.now()
        )
        self._launch(tenant, run.id)
        return run.id

    def advance_runs(self) -> int:
        """Continue active runs whose executor died (a crash, a killed worker)."""
        moved = 0
        for tenant in self.tenants():
            if self._busy(tenant):
                continue
            try:
                run = resumable_run(self.engine, tenant, include_failed=False)
            except ConflictError:  # somebody alive executes it
                continue
            if run is None or _just_created(run):
                continue
            self._launch(tenant, run.id)
            moved += 1
        return moved

    def tick_rollouts(self) -> int:
        if not active_deployment_ids(self.engine):  # no tracker (MLflow) built for nothing
            return 0
        return len(self._deployments().tick(None, actor="worker", now=self.clock.now()))

    def close(self, *, interrupt: bool = True) -> None:
        with self._lock:
            running = list(self._running.values())
        if interrupt:
            for _, ctx in running:
                ctx.interrupt("worker stopping")
        for thread, _ in running:
            thread.join(timeout=60 if interrupt else None)

    def _busy(self, tenant: str) -> bool:
        with self._lock:
            found = self._running.get(tenant)
            return found is not None and found[0].is_alive()

    def _launch(self, tenant: str, run_id: str) -> None:
        run = runs_repo.get_run(self.engine, tenant, run_id)
        ctx = context_for(self.engine, self.settings, run)
        thread = threading.Thread(
            target=self._execute, args=(ctx,), name=f"tuneloop-run-{run_id}", daemon=True
        )
        with self._lock:
            self._running[tenant] = (thread, ctx)
        thread.start()

    def _execute(self, ctx: RunContext) -> None:
        try:
            status = execute(ctx, STEP_FUNCTIONS)
            log.info("run %s ended %s", ctx.run_id, status, extra={"tenant_id": ctx.tenant_id})
        except ConflictError:
            log.info("run %s is executed elsewhere", ctx.run_id)
        except Exception:  # the run records its own failure; the worker goes on
            log.exception("run %s failed", ctx.run_id)

    def _deployments(self) -> DeploymentManager:
        if self._manager is None:
            from tuneloop.rollout.manager import DeploymentManager
            from tuneloop.rollout.safety import ArtifactProbe
            from tuneloop.serving.probe import ServingProbe
            from tuneloop.wiring import tracker_for

            tracker = tracker_for(self.settings)
            probe = ServingProbe(self.settings, ArtifactProbe(tracker))
            self._manager = DeploymentManager(
                self.engine, tracker=tracker, settings=self.settings.rollout, probe=probe
            )
        return self._manager
