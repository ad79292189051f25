"""What a step sees: settings, the store, the run's frozen config, and how to report progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.domain.clock import Clock
from tuneloop.domain.runs import RunStatus

if TYPE_CHECKING:
    from tuneloop.rollout.manager import DeploymentManager
    from tuneloop.tracking import Tracker

# Progress events for the CLI / API: ("step", {...}), ("train_step", {"step", "loss"}), ...
Reporter = Callable[[str, dict[str, Any]], None]


def _quiet(_kind: str, _data: dict[str, Any]) -> None:
    return None


class AbortRequested(Exception):  # noqa: N818  (a signal, not an error)
    """Raised inside a step when the run's abort flag was seen: the run ends, cleaned up."""


class InterruptRequested(Exception):  # noqa: N818  (a signal, not an error)
    """Raised inside a step when its executor is going away (server shutdown).

    Unlike an abort, nothing is cleaned or cancelled: the run stays resumable and the next
    ``tuneloop run`` or ``POST /fine-tuning/start`` continues it.
    """


class StageServices(Protocol):
    """What the composition root (``tuneloop.wiring.Container``) hands every step: built
    once from the deployment's settings, never rebuilt inside a stage."""

    @property
    def clock(self) -> Clock: ...

    @property
    def tracker(self) -> Tracker: ...

    @property
    def deployments(self) -> DeploymentManager: ...

    def trainer(
        self, settings: Settings, tenant_id: str, *, run_id: str, init_adapter: Path | None = None
    ) -> Any:
        """The training backend ``settings.training.backend`` names (a ``Trainer``) for one run;
        ``init_adapter`` warm-starts it from an adapter (local and Ray)."""
        ...


@dataclass
class RunContext:
    settings: Settings  # with the run's own config applied (see service.settings_for_run)
    engine: Engine
    tenant_id: str
    run_id: str
    config: dict[str, Any]
    services: StageServices
    report: Reporter = _quiet
    abort: threading.Event = field(default_factory=threading.Event)
    # Set by whoever executes the run when it must stop but keep its work (see interrupt()).
    interrupted: threading.Event = field(default_factory=threading.Event)
    interrupt_reason: str = "interrupted"
    # How a step waiting out an outage pauses (tests pass a fake: no real sleeping).
    sleep: Callable[[float], None] = time.sleep
    # The run's memory so far (initial, peak, final MB), stored with its final status so a
    # reader never sees a finished run without them (set by ``pipeline.runner``).
    memory: Callable[[], dict[str, float]] | None = None

    @property
    def workdir(self) -> Path:
        """Temporary files of this run (checkpoints...), removed on abort."""
        return self.settings.workspace / "runs" / self.tenant_id / self.run_id

    @property
    def tracker(self) -> Tracker:
        return self.services.tracker

    @property
    def clock(self) -> Clock:
        return self.services.clock

    def interrupt(self, reason: str) -> None:
        """Stop at the next safe point and leave the run to be continued later."""
        self.interrupt_reason = reason
        self.interrupted.set()

    def stop_requested(self) -> bool:
        """Whether a long step (training) should stop at its next safe point."""
        return self.abort.is_set() or self.interrupted.is_set()

    def check_abort(self) -> None:
        """Raise if the run must stop here; an abort wins over an interruption."""
        if self.abort.is_set():
            raise AbortRequested(self.run_id)
        if self.interrupted.is_set():
            raise InterruptRequested(self.run_id)


@dataclass(frozen=True)
class StepOutcome:
    output: dict[str, Any]
    final: RunStatus | None = None  # ends the run here (not enough data, gated, promoted...)
    # Not done yet (an A/B test or a rollout is under way): the output is kept as evidence,
    # the run becomes WAITING and the step is checked again by the next advance.
    wait: bool = False
