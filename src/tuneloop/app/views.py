"""What the pipeline endpoints answer, as plain values: run, status, model version, page.

``app.status`` fills them; the API's schemas are built from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ModelVersionView:
    model_id: str | None
    version: str | None
    training_job_id: str | None
    base_model: str | None
    status: str | None


@dataclass(frozen=True)
class TrainingDataView:
    hook_examples: int | None
    body_examples: int | None
    total_records: int | None


@dataclass(frozen=True)
class MemoryView:
    initial_mb: float | None
    peak_mb: float | None
    final_mb: float | None


@dataclass(frozen=True)
class RunView:
    """What ``POST /fine-tuning/start`` answers: the run as far as it is known."""

    status: str
    pipeline_id: str
    continued: bool
    run_status: str
    model_version: ModelVersionView
    training_data: TrainingDataView
    execution_time_seconds: float
    memory_usage: MemoryView


@dataclass(frozen=True)
class StatusMetrics:
    training_examples: int | None
    training_duration_minutes: float | None
    memory_efficiency_mb_per_example: float | None


@dataclass(frozen=True)
class StepView:
    name: str
    stage: str | None
    status: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class TrainingProgress:
    step: int
    total_steps: int | None


@dataclass(frozen=True)
class StatusView:
    """What ``GET /fine-tuning/status/{id}`` answers."""

    pipeline_id: str
    status: str
    run_status: str
    finished: bool
    progress: dict[str, str]
    current_stage: str | None
    current_step: str | None
    estimated_completion: datetime | None
    metrics: StatusMetrics
    message: str | None
    error: str | None
    losses: list[float]
    training_progress: TrainingProgress | None
    steps: list[StepView]
    model_version: ModelVersionView
    training_data: TrainingDataView
    memory_usage: MemoryView
    execution_time_seconds: float
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    trigger: str = "manual"
    # The typed outputs of evaluate, experiment, decide and rollout: the run's evidence.
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    items: Sequence[Any]
    total: int
    limit: int
    offset: int
