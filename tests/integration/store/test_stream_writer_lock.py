"""The embedded stream's writer lock on SQLite: one writer across processes, released after."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tuneloop.store.event_stream import WriterLock

fcntl = pytest.importorskip("fcntl")

# Exit 3 when the lock is held elsewhere, 0 when this process could take it.
_TRY = """
import fcntl, sys
handle = open(sys.argv[1], "a+b")
try:
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    sys.exit(3)
"""


def _other_process_can_lock(database: Path) -> bool:
    found = subprocess.run([sys.executable, "-c", _TRY, f"{database}.lock"], check=False)
    assert found.returncode in (0, 3), found
    return found.returncode == 0


def test_a_writer_excludes_other_processes_until_it_is_done(tmp_path: Path) -> None:
    database = tmp_path / "tuneloop-events.db"
    lock = WriterLock(str(database))
    try:
        with lock.held():
            assert not _other_process_can_lock(database)
        assert _other_process_can_lock(database)
    finally:
        lock.close()


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    # A read-modify-write that hands the GIL over in the middle (``sleep(0)`` yields, it
    # does not wait): without the lock, updates are lost; with it, none is.
    lock = WriterLock(str(tmp_path / "tuneloop-events.db"))
    written = [0]

    def write() -> None:
        for _ in range(200):
            with lock.held():
                seen = written[0]
                time.sleep(0)
                written[0] = seen + 1

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lock.close()
    assert written[0] == 800


def test_an_in_memory_database_needs_no_lock_file(tmp_path: Path) -> None:
    lock = WriterLock(":memory:")
    with lock.held():
        pass
    lock.close()
    assert not list(tmp_path.iterdir())
