"""The authenticated caller (``Principal``) and the process's memory of verified API keys."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tuneloop.domain.keys import Role


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    tenant_id: str
    role: Role
    subject: str  # API key id, JWT ``sub``, or "local" when auth is disabled
    method: Literal["api_key", "jwt", "disabled"]

    @property
    def rate_key(self) -> str:
        return f"{self.method}:{self.tenant_id}:{self.subject}"


class KeyCache:
    """Verified API keys by their plaintext's hash, each for ``ttl`` seconds."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl, self._clock = ttl, clock
        self._found: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> Principal | None:
        found = self._found.get(digest)
        return found[1] if found is not None and self._clock() < found[0] else None

    def put(self, digest: str, principal: Principal) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            if len(self._found) > 10_000:
                self._found.clear()
            self._found[digest] = (self._clock() + self._ttl, principal)

    def clear(self) -> None:
        with self._lock:
            self._found.clear()
