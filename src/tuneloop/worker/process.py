"""Builds a worker from Settings and runs it: in the foreground until a signal, or in a thread."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from tuneloop.config import Settings
from tuneloop.domain.clock import Clock, SystemClock
from tuneloop.wiring import build_container, clock_for
from tuneloop.worker.actions import AppActions
from tuneloop.worker.loop import Worker

__all__ = ["WorkerThread", "build_worker", "clock_for", "run_foreground"]


def build_worker(settings: Settings, *, clock: Clock | None = None) -> Worker:
    clock = clock or clock_for(settings)
    container = build_container(settings, clock=clock)
    actions = AppActions(container)
    return Worker(container.engine, settings, actions, clock=clock, lease_clock=SystemClock())


def run_foreground(worker: Worker) -> None:
    """Tick until SIGTERM or SIGINT, then stop gracefully (lease released, runs interrupted)."""
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        worker.run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class WorkerThread:
    """The worker in a background thread of another process (``tuneloop serve``)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=worker.run, args=(self.stop_event,), name="tuneloop-worker", daemon=True
        )

    def start(self) -> WorkerThread:
        self.thread.start()
        return self

    def stop(self, timeout: float = 70.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)
