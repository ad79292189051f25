"""Metrics logged while MLflow is unavailable, kept until they can be flushed.

``MetricBuffer(path)`` keeps its entries in a JSONL file (one ``BufferedMetric`` a line),
so metrics survive a crash and a later process on the same workspace can flush them;
``MetricBuffer()`` keeps them in memory only. Entries are flushed oldest first; the
tracker removes a delivered prefix with ``discard_first``. Delivery is at-least-once:
re-logging an identical metric point is harmless in MLflow.

A buffer file belongs to one process at a time (give each worker its own path). It is
bounded: past ``max_entries`` the oldest entries are dropped, with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_MAX_ENTRIES = 50_000


@dataclass(frozen=True)
class BufferedMetric:
    run_id: str
    key: str
    value: float
    timestamp_ms: int
    step: int


class MetricBuffer:
    def __init__(self, path: Path | None = None, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.path = path
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: list[BufferedMetric] = self._load() if path is not None else []

    def __len__(self) -> int:
        return len(self._entries)

    def append(self, metrics: Iterable[BufferedMetric]) -> None:
        new = list(metrics)
        with self._lock:
            self._entries.extend(new)
            overflow = len(self._entries) - self.max_entries
            if overflow > 0:
                log.warning("metric buffer full: dropping the %d oldest entries", overflow)
                del self._entries[:overflow]
                self._rewrite()
            elif self.path is not None:
                self._append_lines(new)

    def pending(self) -> list[BufferedMetric]:
        """A snapshot of the buffered entries, oldest first."""
        with self._lock:
            return list(self._entries)

    def discard_first(self, count: int) -> None:
        """Forget the ``count`` oldest entries (they were delivered or dropped)."""
        if count <= 0:
            return
        with self._lock:
            del self._entries[:count]
            self._rewrite()

    def _load(self) -> list[BufferedMetric]:
        assert self.path is not None
        if not self.path.exists():
            return []
        entries = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entries.append(BufferedMetric(**json.loads(line)))
            except (ValueError, TypeError):  # a torn last line after a crash
                log.warning("metric buffer %s: skipping unreadable line %d", self.path, number)
        return entries[-self.max_entries :]

    def _append_lines(self, entries: list[BufferedMetric]) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.writelines(json.dumps(asdict(e)) + "\n" for e in entries)

    def _rewrite(self) -> None:
        """Replace the file with the current entries, atomically (no half-written file)."""
        if self.path is None:
            return
        if not self._entries:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as file:
            file.writelines(json.dumps(asdict(e)) + "\n" for e in self._entries)
        os.replace(tmp, self.path)
