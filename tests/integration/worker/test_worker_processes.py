"""Two real ``tuneloop worker`` processes: one leads; SIGKILL it and the other takes over
within one lease period; SIGTERM stops a worker gracefully and hands the lease back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tuneloop.store import leases
from tuneloop.store.worker_models import WorkerLease

LEASE_SECONDS = 2.0
TICK_SECONDS = 0.2


def spawn(log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env |= {
        "PYTHONUNBUFFERED": "1",
        "TUNELOOP_WORKER__LEASE_SECONDS": str(LEASE_SECONDS),
        "TUNELOOP_WORKER__TICK_SECONDS": str(TICK_SECONDS),
    }
    command = [sys.executable, "-m", "tuneloop.cli.main", "worker"]
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def pid_of(lease: WorkerLease) -> int:
    return int(lease.holder.split(":")[1])


def wait_lease(engine: Engine, predicate: object, seconds: float, logs: list[Path]) -> WorkerLease:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lease = leases.read_lease(engine)
        if lease is not None and predicate(lease):  # type: ignore[operator]
            return lease
        time.sleep(0.05)
    pytest.fail("no such lease in time; logs:\n" + "\n".join(p.read_text() for p in logs))


@pytest.mark.slow
def test_one_of_two_workers_leads_and_a_killed_leader_is_replaced_within_one_lease(
    engine: Engine, tmp_path: Path
) -> None:
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    children = [spawn(log) for log in logs]
    by_pid = {child.pid: child for child in children}
    try:
        first = wait_lease(engine, lambda lease: lease.last_tick_at is not None, 90, logs)
        assert pid_of(first) in by_pid
        # Both are up and ticking (each logs its start); the holder does not change.
        wait_lease(
            engine,
            lambda lease: lease.last_tick_at > first.last_tick_at + timedelta(seconds=0.5),
            30,
            logs,
        )
        for _ in range(10):
            lease = leases.read_lease(engine)
            assert lease is not None and lease.holder == first.holder
            time.sleep(TICK_SECONDS)

        leader = by_pid[pid_of(first)]
        leader.send_signal(signal.SIGKILL)
        leader.wait(10)
        last = leases.read_lease(engine)
        assert last is not None and last.holder == first.holder
        taken = wait_lease(engine, lambda lease: lease.holder != first.holder, 30, logs)
        survivor = by_pid[pid_of(taken)]
        assert survivor is not leader
        handover = (taken.acquired_at - last.renewed_at).total_seconds()
        assert LEASE_SECONDS <= handover <= LEASE_SECONDS + TICK_SECONDS + 0.5, handover

        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(30) == 0
        released = leases.read_lease(engine)
        assert released is not None and released.holder == taken.holder
        assert released.expires_at <= datetime.now(UTC)  # handed back at once, not left to expire
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait(10)
