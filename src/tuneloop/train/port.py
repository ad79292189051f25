"""The Trainer port: what every training backend (local, hosted API, Ray) accepts and returns.

A backend turns a dataset directory (``train.jsonl``, ``validation.jsonl``, ``manifest.json``
as the dataset builder writes them), a base model and :class:`Hyperparameters` into a
:class:`TrainingJob`. Calls are idempotent on ``output_dir``: the directory is the job's
identity, so calling :meth:`Trainer.train` again after a crash resumes from the last
checkpoint (or returns the finished job) instead of starting over.

Progress is pushed through ``on_step`` (one :class:`StepProgress` per optimizer step, for
the CLI and MLflow); ``should_stop`` is polled between steps (``threading.Event().is_set``
fits) and makes the job end with status ``"aborted"``. Failures raise
:class:`~tuneloop.errors.TrainingError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from tuneloop.train.hyperparams import Hyperparameters

JobStatus = Literal["succeeded", "aborted"]
AbortPolicy = Literal["keep_checkpoints", "delete"]


@dataclass(frozen=True)
class StepProgress:
    """One optimizer step: its training loss and where the job stands."""

    step: int
    total_steps: int
    epoch: float
    loss: float
    learning_rate: float
    tokens_seen: int  # real (non-padding) input tokens processed so far, prompts included
    # More numbers of this step a backend reports (a hosted job's valid_loss, token accuracy).
    metrics: dict[str, float] = field(default_factory=dict)


OnStep = Callable[[StepProgress], None]
ShouldStop = Callable[[], bool]


@dataclass(frozen=True)
class TrainingJob:
    """The outcome of one training job, finished or aborted."""

    backend: str
    status: JobStatus
    base_model: str  # what the adapter applies to: a hub id or a local path
    output_dir: Path
    hyperparams: Hyperparameters  # resolved: no "auto" left
    adapter_path: Path | None  # None when aborted
    steps: tuple[StepProgress, ...] = ()  # every step of the job, resumed attempts included
    tokens_seen: int = 0
    train_loss: float | None = None  # mean step loss over the last epoch
    validation_loss: float | None = None  # token-weighted, assistant tokens only
    checkpoints: tuple[Path, ...] = ()
    resumed_from: Path | None = None
    left_behind: tuple[Path, ...] = ()  # what an aborted job kept on disk
    external_id: str | None = None  # a hosted backend's job id
    device: str = "cpu"
    duration_seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)  # backend-specific numbers

    @property
    def losses(self) -> list[float]:
        return [step.loss for step in self.steps]

    def metrics(self) -> dict[str, float]:
        """Flat numeric summary (MLflow metrics): final losses, tokens, time."""
        values: dict[str, float] = {
            "tokens_seen": float(self.tokens_seen),
            "steps": float(len(self.steps)),
            "duration_seconds": self.duration_seconds,
        }
        if self.train_loss is not None:
            values["train_loss"] = self.train_loss
        if self.validation_loss is not None:
            values["validation_loss"] = self.validation_loss
        return values

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "status": self.status,
            "base_model": self.base_model,
            "output_dir": str(self.output_dir),
            "hyperparams": self.hyperparams.to_params(),
            "adapter_path": None if self.adapter_path is None else str(self.adapter_path),
            "steps": [vars(step) for step in self.steps],
            "tokens_seen": self.tokens_seen,
            "train_loss": self.train_loss,
            "validation_loss": self.validation_loss,
            "checkpoints": [str(path) for path in self.checkpoints],
            "resumed_from": None if self.resumed_from is None else str(self.resumed_from),
            "left_behind": [str(path) for path in self.left_behind],
            "external_id": self.external_id,
            "device": self.device,
            "duration_seconds": self.duration_seconds,
            "details": self.details,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingJob:
        def path(value: str | None) -> Path | None:
            return None if value is None else Path(value)

        return cls(
            backend=data["backend"],
            status=data["status"],
            base_model=data["base_model"],
            output_dir=Path(data["output_dir"]),
            hyperparams=Hyperparameters.from_params(data["hyperparams"]),
            adapter_path=path(data["adapter_path"]),
            steps=tuple(StepProgress(**step) for step in data["steps"]),
            tokens_seen=data["tokens_seen"],
            train_loss=data["train_loss"],
            validation_loss=data["validation_loss"],
            checkpoints=tuple(Path(p) for p in data["checkpoints"]),
            resumed_from=path(data["resumed_from"]),
            left_behind=tuple(Path(p) for p in data["left_behind"]),
            external_id=data["external_id"],
            device=data["device"],
            duration_seconds=data["duration_seconds"],
            details=data.get("details", {}),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")


class Trainer(Protocol):
    """A training backend. ``output_dir`` identifies the job (see the module docstring)."""

    backend: str

    def train(
        self,
        *,
        dataset_dir: Path,
        base_model: str,
        hyperparams: Hyperparameters,
        output_dir: Path,
        resume: bool = True,
        on_step: OnStep | None = None,
        should_stop: ShouldStop | None = None,
        on_abort: AbortPolicy = "keep_checkpoints",
    ) -> TrainingJob:
        """Train (or resume, or return the finished job); raise TrainingError on failure."""
        ...
