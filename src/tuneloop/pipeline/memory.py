"""Samples this process's RSS during a run: initial, peak and final MB, with an alert threshold."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from types import TracebackType

import psutil

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryUsage:
    initial_mb: float
    peak_mb: float
    final_mb: float

    def as_dict(self) -> dict[str, float]:
        return {"initial_mb": self.initial_mb, "peak_mb": self.peak_mb, "final_mb": self.final_mb}


class MemorySampler:
    """A background sampler; use as a context manager, read :attr:`usage` afterwards."""

    def __init__(self, *, interval_s: float = 0.5, alert_mb: float = 2048.0) -> None:
        self.interval_s = interval_s
        self.alert_mb = alert_mb
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tuneloop-memory", daemon=True)
        self.initial_mb = self._rss_mb()
        self.peak_mb = self.initial_mb
        self.final_mb = self.initial_mb
        self.alerted = False

    def _rss_mb(self) -> float:
        return float(self._process.memory_info().rss) / (1024 * 1024)

    def sample(self) -> float:
        current = self._rss_mb()
        self.peak_mb = max(self.peak_mb, current)
        if current > self.alert_mb and not self.alerted:
            self.alerted = True
            log.warning(
                "memory %.0f MB is above the %.0f MB alert threshold", current, self.alert_mb
            )
        return current

    def so_far(self) -> MemoryUsage:
        """The usage until now, the current reading as the final one (the run is ending)."""
        current = self.sample()
        return MemoryUsage(round(self.initial_mb, 1), round(self.peak_mb, 1), round(current, 1))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.final_mb = self.sample()

    @property
    def usage(self) -> MemoryUsage:
        return MemoryUsage(
            round(self.initial_mb, 1), round(self.peak_mb, 1), round(self.final_mb, 1)
        )
