"""Builds the tracker from Settings: embedded SQLite store unless MLFLOW_TRACKING_URI is set.

Every tracker built here counts MLflow failures on the process's one MLflow breaker, so an
outage seen by a pipeline run shows in /health and /metrics, and all runs fail fast together.
"""

from __future__ import annotations

from tuneloop.config import Settings
from tuneloop.resilience.registry import process_breaker
from tuneloop.tracking.buffer import MetricBuffer
from tuneloop.tracking.tracker import Tracker


def tracker_from_settings(settings: Settings) -> Tracker:
    settings.workspace.mkdir(parents=True, exist_ok=True)
    return Tracker(
        settings.mlflow_tracking_uri,
        experiment_prefix=settings.mlflow.experiment_name,
        buffer=MetricBuffer(settings.workspace / "mlflow-metrics-buffer.jsonl"),
        breaker=process_breaker("mlflow"),
    )
