"""What a hosted job says about itself: its status, its events and checkpoints, as our types.

The provider's statuses are an open set: besides the documented ``validating_files``,
``queued``, ``running``, ``succeeded``, ``failed`` and ``cancelled`` it may send one this code
has never seen (``paused``, ...). :func:`phase` sorts any of them into what the poller does
next, and an unknown one is never taken for an end. Events arrive newest first, paginated,
sometimes out of order: :class:`EventLog` keeps each once and hands out metric steps in order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from tuneloop.train.port import StepProgress

Phase = Literal["waiting", "succeeded", "failed", "cancelled", "unknown"]
WAITING = frozenset({"validating_files", "queued", "running"})
LOSS_KEYS = ("train_loss", "valid_loss", "full_valid_loss")
ACCURACY_KEYS = (
    "train_mean_token_accuracy",
    "valid_mean_token_accuracy",
    "full_valid_mean_token_accuracy",
)


def phase(status: str) -> Phase:
    if status in WAITING:
        return "waiting"
    if status in ("succeeded", "failed", "cancelled"):
        return status  # type: ignore[return-value]
    return "unknown"


def failure_reason(job_id: str, error: Any) -> str:
    """The run's failure reason from the job's ``error`` object (which may be empty)."""
    if error is None:
        return f"fine-tuning job {job_id} failed without an error object"
    data = error if isinstance(error, dict) else _as_dict(error)
    code, message, param = data.get("code"), data.get("message"), data.get("param")
    if not code and not message:
        return f"fine-tuning job {job_id} failed with an empty error object"
    where = f" (param {param})" if param else ""
    return f"fine-tuning job {job_id} failed: {code or 'error'}: {message or ''}{where}".strip()


def numbers(data: Any) -> dict[str, float]:
    """The loss and accuracy numbers of an event's ``data`` or a checkpoint's ``metrics``."""
    source = data if isinstance(data, dict) else _as_dict(data)
    found: dict[str, float] = {}
    for key in LOSS_KEYS + ACCURACY_KEYS:
        value = source.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            found[key] = float(value)
    return found


@dataclass
class EventLog:
    """Every event seen once; metric events become :class:`StepProgress`, oldest step first."""

    seen: set[str] = field(default_factory=set)
    steps: dict[int, StepProgress] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    def add(self, events: Iterable[Any], *, n_epochs: int | None) -> list[StepProgress]:
        """Take a batch of events (any order); returns the new steps, in step order."""
        new: list[StepProgress] = []
        for event in events:
            if event.id in self.seen:
                continue
            self.seen.add(event.id)
            data = _as_dict(getattr(event, "data", None))
            if getattr(event, "type", None) == "metrics" and "step" in data:
                progress = _step(data, n_epochs)
                if progress is not None and progress.step not in self.steps:
                    self.steps[progress.step] = progress
                    new.append(progress)
            else:
                self.messages.append(str(getattr(event, "message", "")))
        return sorted(new, key=lambda p: p.step)

    @property
    def last_step(self) -> int:
        return max(self.steps, default=0)

    def ordered(self) -> tuple[StepProgress, ...]:
        return tuple(self.steps[k] for k in sorted(self.steps))


def _step(data: dict[str, Any], n_epochs: int | None) -> StepProgress | None:
    metrics = numbers(data)
    if "train_loss" not in metrics:
        return None
    step = int(data["step"])
    total = int(data.get("total_steps") or step)
    epoch = step * n_epochs / total if n_epochs and total else 0.0
    extra = {k: v for k, v in metrics.items() if k != "train_loss"}
    return StepProgress(
        step=step,
        total_steps=total,
        epoch=round(epoch, 4),
        loss=metrics["train_loss"],
        learning_rate=0.0,  # the provider reports a multiplier, not a rate per step
        tokens_seen=0,
        metrics=extra,
    )


def _as_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    dump = getattr(value, "model_dump", None)
    return dump() if callable(dump) else dict(vars(value))
