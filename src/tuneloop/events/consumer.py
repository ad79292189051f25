"""The stream consumer: reads entries in large batches, writes them, acknowledges after commit.

Each batch goes, tenant by tenant, through ``ingest_events`` (the one ingestion path, so
its rules apply to streamed events too) and only then is acknowledged: a consumer killed
between the commit and the acknowledgement has its entries delivered again, and the
events table's idempotency key makes that second write a no-op (nothing lost, nothing
counted twice).

What ingestion refuses is sorted by category:

- ``validation`` (a malformed event, a missing tenant): dead-lettered at once, since
  delivering it again cannot change the answer;
- ``unknown_reference`` (an experiment, arm or generation not found — it may not have been
  written yet): left unacknowledged, delivered again after the claim idle time, and
  dead-lettered after ``max_deliveries``;
- ``processing`` (the write failed): the batch is retried entry by entry to isolate the
  culprit, which is left for redelivery and dead-lettered after ``max_deliveries``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from tuneloop.domain.event_stream import Category, Entry, EventStream, StreamGone
from tuneloop.events.ingest import IngestReport, ingest_events
from tuneloop.events.schema import Rejection
from tuneloop.observability.event_metrics import EVENTS_WRITTEN, count_dead_letter

log = logging.getLogger(__name__)

Ingest = Callable[[Engine, str, Sequence[Any]], IngestReport]
# Fields whose refusal means "names something not found (yet)", not "malformed".
REFERENCE_FIELDS = frozenset({"experiment_key", "arm", "generation_id"})
# Reasons under those fields that no later write can change (pydantic's; an outcome that
# contradicts the generation it names).
_FINAL_PREFIXES = ("String should", "Input should", "Field required", "generation ")


def category_of(problems: Sequence[Rejection]) -> Category:
    """``unknown_reference`` when every problem is a reference not found, else ``validation``."""
    if problems and all(
        p.field in REFERENCE_FIELDS and not p.reason.startswith(_FINAL_PREFIXES) for p in problems
    ):
        return Category.UNKNOWN_REFERENCE
    return Category.VALIDATION


@dataclass
class Progress:
    """What the consumer did so far (or in one batch)."""

    read: int = 0
    written: int = 0
    duplicates: int = 0
    retried: int = 0
    dead_lettered: int = 0


def consumer_name() -> str:
    """A name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class EventConsumer:
    """Drains ``stream`` into the events table (see the module docstring)."""

    def __init__(
        self,
        stream: EventStream,
        engine: Engine,
        *,
        name: str | None = None,
        batch_size: int = 5000,
        max_deliveries: int = 5,
        poll_seconds: float = 0.2,
        ingest: Ingest = ingest_events,
        on_written: Callable[[str], None] | None = None,
    ) -> None:
        self.stream = stream
        self.engine = engine
        self.name = name or consumer_name()
        self.batch_size = batch_size
        self.max_deliveries = max_deliveries
        self.poll_seconds = poll_seconds
        self.ingest = ingest
        self.on_written = on_written  # told the tenant after a batch wrote new events
        self.progress = Progress()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, *, block_seconds: float = 0.0) -> Progress:
        """Read one batch and write it; returns what this batch did."""
        batch = Progress()
        try:
            entries = self.stream.read(self.name, self.batch_size, block_seconds=block_seconds)
        except StreamGone as gone:
            log.warning("event stream vanished; consuming again", extra={"error": str(gone)})
            return batch
        batch.read = len(entries)
        by_tenant: dict[str, list[Entry]] = {}
        for entry in entries:
            by_tenant.setdefault(entry.tenant_id, []).append(entry)
        for tenant_id, group in by_tenant.items():
            if not tenant_id:
                for entry in group:
                    self._dead_letter(entry, Category.VALIDATION, "tenant: missing", batch)
            else:
                self._write(tenant_id, group, batch)
        for field in ("read", "written", "duplicates", "retried", "dead_lettered"):
            setattr(self.progress, field, getattr(self.progress, field) + getattr(batch, field))
        return batch

    def _write(self, tenant_id: str, group: list[Entry], batch: Progress) -> None:
        try:
            report = self.ingest(self.engine, tenant_id, [entry.event for entry in group])
        except Exception as exc:
            if len(group) > 1:  # isolate the entry that fails: write the others
                for entry in group:
                    self._write(tenant_id, [entry], batch)
                return
            self._failed(group[0], Category.PROCESSING, f"{type(exc).__name__}: {exc}", batch)
            return
        batch.written += report.accepted
        batch.duplicates += report.duplicates
        EVENTS_WRITTEN.inc(report.accepted)
        if report.accepted and self.on_written is not None:
            self.on_written(tenant_id)  # e.g. the evaluation-metrics cache drops its reports
        refused: dict[int, list[Rejection]] = {}
        for problem in report.problems:
            refused.setdefault(problem.index, []).append(problem)
        done: list[str] = []
        for index, entry in enumerate(group):
            problems = refused.get(index)
            if problems is None:
                done.append(entry.id)
                continue
            error = "; ".join(f"{p.field}: {p.reason}" for p in problems)
            category = category_of(problems)
            if category is Category.VALIDATION:
                self._dead_letter(entry, category, error, batch)
            else:
                self._failed(entry, category, error, batch)
        self.stream.ack(done)  # only now: the events are committed

    def _failed(self, entry: Entry, category: Category, error: str, batch: Progress) -> None:
        if entry.deliveries >= self.max_deliveries:
            self._dead_letter(entry, category, error, batch)
        else:  # left unacknowledged: delivered again after the claim idle time
            batch.retried += 1

    def _dead_letter(self, entry: Entry, category: Category, error: str, batch: Progress) -> None:
        self.stream.dead_letter(entry, category, error[:2000])
        count_dead_letter(category)
        batch.dead_lettered += 1
        log.warning(
            "event dead-lettered",
            extra={"category": category.value, "entry_id": entry.id, "attempts": entry.deliveries},
        )

    def drain(self, *, timeout: float = 30.0) -> Progress:
        """Consume until a read finds nothing (tests, ``tuneloop consume events --drain``)."""
        total = Progress()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = self.run_once()
            if batch.read == 0:
                break
            for field in ("read", "written", "duplicates", "retried", "dead_lettered"):
                setattr(total, field, getattr(total, field) + getattr(batch, field))
        return total

    def catch_up(self, *, timeout: float = 10.0) -> bool:
        """Consume until nothing waits in the stream (read-your-writes in tests and scripts);
        False when entries still wait after ``timeout`` (e.g. held for redelivery)."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain(timeout=max(deadline - time.monotonic(), 0.0))
            if self.stream.lag().pending == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)  # another consumer (the serve thread) holds the last entries

    def run(self, stop: threading.Event | None = None) -> None:
        """Consume until ``stop`` is set; an error is logged and the loop goes on."""
        stop = stop or self._stop
        while not stop.is_set():
            try:
                batch = self.run_once(block_seconds=self.poll_seconds)
            except Exception:
                log.exception("event consumer batch failed; retrying")
                stop.wait(self.poll_seconds)
                continue
            if batch.read == 0:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def wake(self) -> None:
        """Entries were just appended (in this process): read now instead of after the poll."""
        self._wake.set()

    def start(self) -> None:
        """Run in a daemon thread (``tuneloop serve``)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="event-consumer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
