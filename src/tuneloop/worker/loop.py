"""The tick loop: under the leader lease, advance runs, tick rollouts, start what is due.

Every worker ticks; only the one holding the lease acts, so two workers (or two replicas
of ``tuneloop serve``) never double-start, double-tick or double-deploy. The lease lasts
``worker.lease_seconds`` and is renewed each tick; a killed leader's lease expires and the
next worker to tick takes it. A graceful stop releases it at once.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from tuneloop.config import Settings
from tuneloop.domain.clock import Clock
from tuneloop.errors import ConflictError
from tuneloop.pipeline.lease import new_owner
from tuneloop.store import leases
from tuneloop.store import schedules as repo
from tuneloop.worker.actions import LoopActions
from tuneloop.worker.decide import Verdict, decide
from tuneloop.worker.readings import read_state

log = logging.getLogger(__name__)


@dataclass
class TickReport:
    """What one tick did (stored with the lease, shown by /health)."""

    leader: bool
    at: str
    advanced: int = 0
    rollouts: int = 0
    started: dict[str, str] = field(default_factory=dict)  # tenant -> "trigger run_id"
    errors: list[str] = field(default_factory=list)


class Worker:
    """One worker process's loop; ``tick()`` is one pass, ``run()`` ticks until stopped."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        actions: LoopActions,
        *,
        clock: Clock,
        lease_clock: Clock | None = None,
        holder: str | None = None,
        lease_seconds: float | None = None,
    ) -> None:
        """``clock`` decides what is due; ``lease_clock`` (default: the same) times the lease.
        A worker on a scaled clock keeps its lease on the wall clock: the lease is about
        whether a process is alive, which scaled time cannot tell."""
        self.engine, self.settings, self.actions, self.clock = engine, settings, actions, clock
        self.lease_clock = lease_clock or clock
        self.holder = holder or new_owner()
        self.ttl = timedelta(seconds=lease_seconds or settings.worker.lease_seconds)
        self.leading = False

    def tick(self) -> TickReport:
        now, lease_now = self.clock.now(), self.lease_clock.now()
        try:
            self.leading = leases.try_acquire(self.engine, self.holder, now=lease_now, ttl=self.ttl)
        except OperationalError:  # a busy database: not leading this tick, try the next
            log.warning("lease check failed", exc_info=True)
            self.leading = False
        report = TickReport(leader=self.leading, at=now.isoformat())
        if not self.leading:
            return report
        report.advanced = self._guard(report, "advance", self.actions.advance_runs) or 0
        report.rollouts = self._guard(report, "rollouts", self.actions.tick_rollouts) or 0
        for tenant in self._guard(report, "tenants", self.actions.tenants) or []:
            self._guard(report, f"tenant {tenant}", lambda t=tenant: self.check_tenant(t, report))
        leases.record_tick(self.engine, self.holder, at=lease_now, summary=asdict(report))
        return report

    def check_tenant(self, tenant: str, report: TickReport) -> Verdict:
        """Start the tenant's run if its schedule or a trigger says so (and nothing blocks)."""
        now = self.clock.now()
        active = self.actions.active_run_id(tenant)
        verdict = decide(read_state(self.engine, self.settings, tenant, now=now, active_run=active))
        if not verdict.start or verdict.trigger is None:
            return verdict
        if verdict.fire_at is not None and not repo.claim_fire(
            self.engine, tenant, verdict.fire_at, by=self.holder, now=now
        ):
            return verdict  # another worker claimed this fire
        try:
            run_id = self.actions.start_run(tenant, verdict.trigger)
        except Exception as exc:
            # Not started (a run began meanwhile, a database blip): the fire stays due.
            if verdict.fire_at is not None:
                repo.unclaim_fire(self.engine, tenant, verdict.fire_at)
            if isinstance(exc, ConflictError):
                return verdict
            raise
        if verdict.fire_at is not None:
            repo.attach_run(self.engine, tenant, verdict.fire_at, run_id)
        report.started[tenant] = f"{verdict.trigger} {run_id}"
        log.info("started run %s (%s)", run_id, verdict.trigger, extra={"tenant_id": tenant})
        return verdict

    def run(self, stop: threading.Event) -> None:
        """Tick every ``worker.tick_seconds`` (wall time) until ``stop`` is set."""
        log.info("worker %s ticking every %ss", self.holder, self.settings.worker.tick_seconds)
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except Exception:  # one bad tick (database blip) must not end the worker
                    log.exception("worker tick failed")
                stop.wait(self.settings.worker.tick_seconds)
        finally:
            self.actions.close()
            leases.release(self.engine, self.holder, now=self.lease_clock.now())
            self.leading = False

    def _guard(self, report: TickReport, what: str, action: Any) -> Any:
        try:
            return action()
        except Exception as exc:
            log.exception("worker: %s failed", what)
            report.errors.append(f"{what}: {type(exc).__name__}: {exc}")
            return None
