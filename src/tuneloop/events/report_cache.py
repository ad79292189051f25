"""The evaluation-metrics cache: reports kept 5 minutes, dropped when new events are written.

An experiment's report is an aggregate over its events, so it can only change when the
consumer writes events for the tenant (or the experiment's status changes, which is part of
the cache key). The consumer calls ``invalidate_tenant`` after each committed batch.

- With Redis (production): reports are JSON under ``PREFIX{tenant}:{generation}:{key}`` with
  a TTL; a tenant's generation counter (``INCR`` on invalidation) makes every older entry
  unreachable at once, in every process, whichever process consumed.
- Without (embedded default): a dict in the process; a consumer in another process cannot
  reach it, so there the TTL bounds staleness.

Every lookup is recorded in ``CACHE_STATS`` (``fine_tuning_pipeline_cache_hit_rate``, and
``cache_hit_rate`` in ``/health``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from tuneloop.observability.metrics import CACHE_STATS

TTL_SECONDS = 300.0
PREFIX = "tuneloop:cache:metrics:"


class ReportCache:
    """Reports by (tenant, key, version), for ``ttl`` seconds or until the tenant's next write."""

    def __init__(
        self,
        *,
        redis: Any | None = None,
        ttl: float = TTL_SECONDS,
        prefix: str = PREFIX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis: Any = redis
        self.ttl = ttl
        self.prefix = prefix
        self.clock = clock
        self._local: dict[tuple[str, str], tuple[float, str, Any]] = {}
        self._lock = threading.Lock()

    def get_or_compute(
        self, tenant_id: str, key: str, version: str, compute: Callable[[], Any]
    ) -> Any:
        """The cached report for ``key`` at ``version`` (e.g. the experiment's status), or
        ``compute()``'s, stored."""
        if self.redis is not None:
            return self._redis_get_or_compute(tenant_id, key, version, compute)
        now = self.clock()
        with self._lock:
            found = self._local.get((tenant_id, key))
        if found is not None and found[0] > now and found[1] == version:
            CACHE_STATS.record(hit=True)
            return found[2]
        CACHE_STATS.record(hit=False)
        value = compute()
        with self._lock:
            self._local[(tenant_id, key)] = (now + self.ttl, version, value)
        return value

    def _redis_get_or_compute(
        self, tenant_id: str, key: str, version: str, compute: Callable[[], Any]
    ) -> Any:
        generation = self.redis.get(f"{self.prefix}{tenant_id}:generation") or b"0"
        name = f"{self.prefix}{tenant_id}:{generation.decode()}:{key}:{version}"
        cached = self.redis.get(name)
        if cached is not None:
            CACHE_STATS.record(hit=True)
            return json.loads(cached)
        CACHE_STATS.record(hit=False)
        value = compute()
        self.redis.set(name, json.dumps(value, default=str), ex=max(int(self.ttl), 1))  # NaN kept
        return value

    def invalidate_tenant(self, tenant_id: str) -> None:
        """New events were written for the tenant: its reports are stale."""
        if self.redis is not None:
            self.redis.incr(f"{self.prefix}{tenant_id}:generation")
            return
        with self._lock:
            for cached in [k for k in self._local if k[0] == tenant_id]:
                del self._local[cached]
