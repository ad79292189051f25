"""Background pipeline runs: one thread per run, owned by whoever holds the registry.

``POST /fine-tuning/start`` (and the worker) answer at once; the run executes here, in a
thread that calls ``execute(context_for(...), STEP_FUNCTIONS)`` like ``tuneloop run`` does.
The API keeps a registry on ``app.state.run_workers`` while it runs (see
``api.run_workers``); the worker process keeps its own. At shutdown every live
run is interrupted (``RunContext.interrupt``), not aborted: training stops at its next
step, the lease is released and nothing is cleaned, so the next start (or ``tuneloop
run``) continues the run from its last committed step and checkpoint. Each worker keeps
its live training progress (step, total, losses) for the status endpoint, and records the
documented pipeline metrics when its execution ends.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tuneloop.domain.runs import RunStatus
from tuneloop.errors import ConflictError
from tuneloop.observability.metrics import observe_pipeline_run
from tuneloop.pipeline.context import RunContext
from tuneloop.pipeline.runner import execute
from tuneloop.pipeline.service import context_for
from tuneloop.pipeline.steps import STEP_FUNCTIONS
from tuneloop.store import runs as repo
from tuneloop.store.pipeline_models import PipelineRun
from tuneloop.store.types import utcnow
from tuneloop.wiring import Container

log = logging.getLogger(__name__)

SHUTDOWN_REASON = "server_shutdown"  # recorded on the interrupted step
MAX_LIVE_LOSSES = 2000  # a chart needs no more; the train step's output keeps the full list


@dataclass
class LiveProgress:
    """Training progress as the trainer reports it, for status while the run is going."""

    step: int = 0
    total_steps: int | None = None
    losses: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind != "train_step":
            return
        with self.lock:
            self.step, self.total_steps = int(data["step"]), data.get("total")
            if len(self.losses) < MAX_LIVE_LOSSES:
                self.losses.append(float(data["loss"]))

    def snapshot(self) -> tuple[int, int | None, list[float]]:
        with self.lock:
            return self.step, self.total_steps, list(self.losses)


@dataclass
class Worker:
    tenant_id: str
    run_id: str
    context: RunContext
    progress: LiveProgress
    thread: threading.Thread


class RunWorkers:
    """The runs this process executes in the background, by run id."""

    def __init__(self) -> None:
        self._workers: dict[str, Worker] = {}
        self._lock = threading.Lock()
        self.start_lock = threading.Lock()  # held by a start from its check to its launch

    def live_for_tenant(self, tenant_id: str) -> Worker | None:
        with self._lock:
            return next(
                (
                    w
                    for w in self._workers.values()
                    if w.tenant_id == tenant_id and w.thread.is_alive()
                ),
                None,
            )

    def get(self, tenant_id: str, run_id: str) -> Worker | None:
        with self._lock:
            worker = self._workers.get(run_id)
        return worker if worker is not None and worker.tenant_id == tenant_id else None

    def launch(self, container: Container, run: PipelineRun) -> Worker:
        """Execute ``run`` in a new thread; ConflictError if this process already runs one."""
        progress = LiveProgress()
        ctx = context_for(container.engine, container.settings, run, progress, services=container)
        thread = threading.Thread(
            target=_work, args=(ctx,), name=f"tuneloop-run-{run.id}", daemon=True
        )
        worker = Worker(run.tenant_id, run.id, ctx, progress, thread)
        with self._lock:
            self._forget_finished()
            busy = self._workers.get(run.id)
            if busy is not None and busy.thread.is_alive():
                raise ConflictError(f"run {run.id} is already being executed by this server")
            self._workers[run.id] = worker
            thread.start()
        return worker

    def _forget_finished(self) -> None:
        # A finished run's status comes from the store; only live progress needs the worker.
        for run_id in [k for k, w in self._workers.items() if not w.thread.is_alive()]:
            del self._workers[run_id]

    def wait(self) -> None:
        """Wait until every run this process executes has ended (a worker's ``--once``)."""
        with self._lock:
            live = [w for w in self._workers.values() if w.thread.is_alive()]
        for worker in live:
            worker.thread.join()

    def shutdown(self, *, timeout_s: float = 60.0) -> None:
        """Interrupt every live run (kept resumable, not aborted) and wait for it to stop."""
        with self._lock:
            live = [w for w in self._workers.values() if w.thread.is_alive()]
        for worker in live:
            worker.context.interrupt(SHUTDOWN_REASON)
        deadline = time.monotonic() + timeout_s
        for worker in live:
            worker.thread.join(max(0.0, deadline - time.monotonic()))
            if worker.thread.is_alive():
                log.warning(
                    "run %s did not stop within %.0f s of shutdown", worker.run_id, timeout_s
                )


def _work(ctx: RunContext) -> None:
    """The worker thread: execute the run, then record the documented metrics."""
    began, began_at = time.monotonic(), utcnow()
    try:
        status = execute(ctx, STEP_FUNCTIONS)
    except ConflictError as exc:  # another process took the run between start and here
        log.warning("run %s not executed here: %s", ctx.run_id, exc)
        return
    except Exception:
        log.exception("run %s crashed outside its steps", ctx.run_id)
        return
    try:
        _record_metrics(ctx, status, seconds=time.monotonic() - began, began_at=began_at)
    except Exception:  # metrics must never turn a finished run into an error
        log.warning("could not record metrics of run %s", ctx.run_id, exc_info=True)


def _record_metrics(
    ctx: RunContext, status: RunStatus, *, seconds: float, began_at: datetime
) -> None:
    run = repo.get_run(ctx.engine, ctx.tenant_id, ctx.run_id)
    examples = 0
    for step in repo.steps_of(ctx.engine, ctx.tenant_id, ctx.run_id):
        # Count the examples once: only when this execution built the dataset.
        built_now = step.started_at is not None and step.started_at >= began_at
        if step.name == "collect" and step.status == "succeeded" and built_now:
            examples = int((step.output or {}).get("counts", {}).get("train", 0))
    observe_pipeline_run(seconds=seconds, peak_mb=run.memory_peak_mb, training_examples=examples)
    # RUNNING after execute: interrupted (server shutdown), to be continued by the next start.
    outcome = "was interrupted" if status == RunStatus.RUNNING else f"finished {status.value}"
    log.info(
        "run %s %s in %.1f s",
        ctx.run_id,
        outcome,
        seconds,
        extra={"event": "pipeline_run_finished"},
    )
