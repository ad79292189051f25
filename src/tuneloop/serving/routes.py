"""Routing decisions for the serving endpoints, with each tenant's routing state cached briefly.

``rollout.routing.routing_table`` reads three things (the running experiment, the active
deployment, the champion); answering every ``/v1/route`` call from the database would put
three queries on the hot path. ``RouteCache`` keeps each tenant's table for
``serving.route_cache_seconds`` (1 s by default), so a deploy, a rollout step or a rollback
reaches every process within that time. Assignment itself is a pure function of ids, so a
cached table routes exactly like a fresh one. When a table expires, one request per tenant
reads the new one while the others wait for it (no stampede of identical reads).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from tuneloop.rollout.routing import HoldoutPolicy, Route, RoutingTable, routing_table


class RouteCache:
    def __init__(
        self,
        engine: Engine,
        *,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        holdout: HoldoutPolicy | None = None,
    ) -> None:
        self._engine = engine
        self._holdout = holdout
        self._ttl = ttl_seconds
        self._clock = clock
        self._tables: dict[str, tuple[float, RoutingTable]] = {}
        self._lock = threading.Lock()
        self._reading: dict[str, threading.Lock] = {}  # per tenant: one reader at a time

    def table(self, tenant_id: str) -> RoutingTable:
        fresh = self.cached(tenant_id)
        if fresh is not None:
            return fresh
        with self._lock:
            reading = self._reading.setdefault(tenant_id, threading.Lock())
        with reading:
            fresh = self.cached(tenant_id)  # read by the request this one waited for
            if fresh is not None:
                return fresh
            now = self._clock()
            table = routing_table(self._engine, tenant_id, holdout=self._holdout)
            if self._ttl > 0:
                with self._lock:
                    self._tables[tenant_id] = (now + self._ttl, table)
            return table

    def cached(self, tenant_id: str) -> RoutingTable | None:
        """The tenant's table if it is still fresh (no database access)."""
        found = self._tables.get(tenant_id)
        return found[1] if found is not None and self._clock() < found[0] else None

    def route(self, tenant_id: str, unit_id: str) -> Route:
        """The model for ``unit_id``; ``NotFoundError`` when the tenant has nothing to serve."""
        return self.table(tenant_id).route(unit_id)
