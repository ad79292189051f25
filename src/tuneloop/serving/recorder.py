"""Generation events written off the request path, in batches, by one background thread.

The proxy answers first and records after: ``record`` only queues (it never blocks, so it is
safe in a streaming response's ``finally``, even while the client disconnects). The thread
writes whatever has queued up through the same ingestion as ``POST /v1/events``
(validated, idempotent), one batch per tenant; a batch the database refuses is tried again
(3 attempts, 0.5 s then 1 s apart: ingestion is idempotent, so a retry cannot double it).
A batch still refused is split in halves, each written alone, down to single events: one
event the database will not take never takes the others with it. An event that cannot be
written alone is counted (``tuneloop_generation_events_dead_lettered_total``), logged (its
key and the error's class, never its contents) and appended to the dead-letter file
(``<workspace>/dead-letters/generation-events.jsonl``: one JSON object per line, ``tenant``,
``error`` and the ``event`` as ``POST /v1/events`` accepts it — replay by posting it).
``flush`` waits until everything queued so far is written; the app flushes at shutdown, so a
clean stop loses nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine
from tenacity import Retrying, stop_after_attempt, wait_exponential

from tuneloop.events.ingest import IngestReport, ingest_events
from tuneloop.observability.metrics import count_dead_letter

log = logging.getLogger(__name__)

Batch = tuple[str, list[dict[str, Any]]]  # tenant, events
Ingest = Callable[[Engine, str, Sequence[Any]], IngestReport]
MAX_BATCH = 1000
RETRY_ATTEMPTS = 3
RETRY_WAIT_S = 0.5


class EventRecorder:
    def __init__(
        self,
        engine: Engine,
        *,
        ingest: Ingest = ingest_events,
        dead_letters: Path | None = None,
    ) -> None:
        self._engine = engine
        self._ingest = ingest
        self._dead_letters = dead_letters  # None: refused events are only counted and logged
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
                log.warning(
                    "a batch of %d generation events was refused; writing it in parts",
                    len(events),
                    extra={"tenant": tenant_id},
                )
                self._isolate(tenant_id, events)
                continue
            self._log_problems(tenant_id, report)

    def _isolate(self, tenant_id: str, events: list[dict[str, Any]]) -> None:
        """Write ``events`` in halves (once each, no retries) until the refused ones are alone."""
        if len(events) == 1:
            try:
                report = self._ingest(self._engine, tenant_id, events)
            except Exception as exc:
                self._dead_letter(tenant_id, events[0], exc)
                return
            self._log_problems(tenant_id, report)
            return
        middle = len(events) // 2
        for part in (events[:middle], events[middle:]):
            try:
                report = self._ingest(self._engine, tenant_id, part)
            except Exception:
                self._isolate(tenant_id, part)
                continue
            self._log_problems(tenant_id, report)

    def _dead_letter(self, tenant_id: str, event: dict[str, Any], exc: Exception) -> None:
        count_dead_letter()
        error = type(exc).__name__
        log.error(
            "generation event %s could not be stored (%s); kept in the dead-letter file",
            event.get("idempotency_key"),
            error,
            extra={"tenant": tenant_id},
        )
        if self._dead_letters is None:
            return
        line = orjson.dumps({"tenant": tenant_id, "error": error, "event": event}, default=str)
        try:
            self._dead_letters.parent.mkdir(parents=True, exist_ok=True)
            with self._dead_letters.open("ab") as file:
                file.write(line + b"\n")
        except OSError:
            log.exception("could not write the dead-letter file %s", self._dead_letters)

    @staticmethod
    def _log_problems(tenant_id: str, report: IngestReport) -> None:
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
