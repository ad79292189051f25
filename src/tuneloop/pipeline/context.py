"""What a step sees: settings, the store, the run's frozen config, and how to report progress."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.domain.runs import RunStatus

if TYPE_CHECKING:
    from tuneloop.tracking import Tracker

# Progress events for the CLI / API: ("step", {...}), ("train_step", {"step", "loss"}), ...
Reporter = Callable[[str, dict[str, Any]], None]


def _quiet(_kind: str, _data: dict[str, Any]) -> None:
    return None


class AbortRequested(Exception):  # noqa: N818  (a signal, not an error)
    """Raised inside a step when the run's abort flag was seen."""


@dataclass
class RunContext:
    settings: Settings  # with the run's own config applied (see service.settings_for_run)
    engine: Engine
    tenant_id: str
    run_id: str
    config: dict[str, Any]
    report: Reporter = _quiet
    abort: threading.Event = field(default_factory=threading.Event)

    @property
    def workdir(self) -> Path:
        """Temporary files of this run (checkpoints...), removed on abort."""
        return self.settings.workspace / "runs" / self.tenant_id / self.run_id

    @cached_property
    def tracker(self) -> Tracker:
        from tuneloop.tracking.factory import tracker_from_settings as tracker_for

        return tracker_for(self.settings)

    def check_abort(self) -> None:
        if self.abort.is_set():
            raise AbortRequested(self.run_id)


@dataclass(frozen=True)
class StepOutcome:
    output: dict[str, Any]
    final: RunStatus | None = None  # ends the run here (not enough data, gated)
