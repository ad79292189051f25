"""Generation events written off the request path, in batches, by one background thread.

The proxy answers first and records after: ``record`` only queues (it never blocks, so it is
safe in a streaming response's ``finally``, even while the client disconnects). The thread
writes whatever has queued up through the same ingestion as ``POST /v1/events``
(validated, idempotent), one batch per tenant; a batch the database refuses is tried again
(3 attempts, 0.5 s then 1 s apart: ingestion is idempotent, so a retry cannot double it)
before it is logged and dropped. ``flush`` waits until everything queued so
far is written; the app flushes at shutdown, so a clean stop loses nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine
from tenacity import Retrying, stop_after_attempt, wait_exponential

from tuneloop.events.ingest import IngestReport, ingest_events

log = logging.getLogger(__name__)

Batch = tuple[str, list[dict[str, Any]]]  # tenant, events
Ingest = Callable[[Engine, str, Sequence[Any]], IngestReport]
MAX_BATCH = 1000
RETRY_ATTEMPTS = 3
RETRY_WAIT_S = 0.5


class EventRecorder:
    def __init__(self, engine: Engine, *, ingest: Ingest = ingest_events) -> None:
        self._engine = engine
        self._ingest = ingest
        self._queue: queue.SimpleQueue[Batch | None] = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="tuneloop-events", daemon=True)
        self._thread.start()

    def record(self, tenant_id: str, events: list[dict[str, Any]]) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put((tenant_id, events))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is pending (everything recorded so far, and anything recorded
        meanwhile, is written); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            taken = [first]
            stop = False
            while len(taken) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                taken.append(more)
            self._write(taken)
            with self._idle:
                self._pending -= len(taken)
                self._idle.notify_all()
            if stop:
                return

    def _write(self, taken: list[Batch]) -> None:
        by_tenant: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for tenant_id, events in taken:
            by_tenant[tenant_id].extend(events)
        for tenant_id, events in by_tenant.items():
            try:
                report = self._ingest_with_retries(tenant_id, events)
            except Exception:
                log.exception(
                    "could not record %d generation events",
                    len(events),
                    extra={"tenant": tenant_id},
                )
                continue
            for problem in report.problems:
                log.warning("generation event refused: %s", problem, extra={"tenant": tenant_id})

    def _ingest_with_retries(self, tenant_id: str, events: list[dict[str, Any]]) -> IngestReport:
        for attempt in Retrying(
            stop=stop_after_attempt(RETRY_ATTEMPTS),
            wait=wait_exponential(multiplier=RETRY_WAIT_S, max=4 * RETRY_WAIT_S),
            reraise=True,
        ):
            with attempt:
                return self._ingest(self._engine, tenant_id, events)
        raise AssertionError("unreachable: tenacity re-raises the last error")
