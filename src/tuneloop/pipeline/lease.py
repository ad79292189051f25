"""Who is executing a run: an owner string, and whether that owner is still alive."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

import psutil

HEARTBEAT_SECONDS = 10
STALE_AFTER = timedelta(seconds=60)


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_alive(owner: str | None, heartbeat_at: datetime | None, now: datetime) -> bool:
    """A run's executor is alive if its heartbeat is fresh and, on this host, its pid exists.

    The pid check lets a crashed run be continued at once on the same machine instead of
    waiting for the heartbeat to go stale.
    """
    if owner is None or heartbeat_at is None:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host == socket.gethostname() and pid_text.isdigit():
        pid = int(pid_text)
        if pid == os.getpid():
            return True
        if not psutil.pid_exists(pid):
            return False
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            return False
    return now - heartbeat_at < STALE_AFTER
