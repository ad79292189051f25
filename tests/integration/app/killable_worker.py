"""Real worker processes for the SIGKILL test: ``python killable_worker.py CLOCK TICKS``.

A launcher imports tuneloop once, then forks a fresh worker process for every line it
reads on stdin and prints its pid (a restart costs a fork, not seconds of imports). Each
worker is built by ``build_worker`` from the environment's settings, as ``tuneloop worker``
builds it, but on a clock whose time the test writes to the file ``CLOCK`` (never going
backwards, across restarts too). After every tick it writes ``PID COUNT`` to ``TICKS`` so
the test knows the worker saw the time it set.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from tuneloop.config import get_settings
from tuneloop.observability.logging import configure_logging
from tuneloop.worker.process import build_worker


class FileClock:
    """Time as written (ISO 8601, aware) in a file by another process; monotonic."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._last = datetime.fromisoformat(path.read_text().strip())

    def now(self) -> datetime:
        try:
            seen = datetime.fromisoformat(self.path.read_text().strip())
        except (OSError, ValueError):  # mid-replace: the last time read stands
            seen = self._last
        with self._lock:
            self._last = max(self._last, seen)
            return self._last


def write_atomically(path: Path, text: str) -> None:
    scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    scratch.write_text(text)
    os.replace(scratch, path)


def main(clock_file: Path, ticks_file: Path) -> None:
    settings = get_settings()
    configure_logging(settings)
    worker = build_worker(settings, clock=FileClock(clock_file))
    ticks = 0
    while True:
        worker.tick()
        ticks += 1
        write_atomically(ticks_file, f"{os.getpid()} {ticks}")
        time.sleep(worker.settings.worker.tick_seconds)


def launch(clock_file: Path, ticks_file: Path) -> None:
    """Fork a worker per line on stdin; the kernel reaps the killed ones."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for _ in sys.stdin:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                main(clock_file, ticks_file)
            finally:
                os._exit(1)
        print(pid, flush=True)


if __name__ == "__main__":
    launch(Path(sys.argv[1]), Path(sys.argv[2]))
