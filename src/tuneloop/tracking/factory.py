"""Builds the tracker from Settings: embedded SQLite store unless MLFLOW_TRACKING_URI is set."""

from __future__ import annotations

from tuneloop.config import Settings
from tuneloop.tracking.buffer import MetricBuffer
from tuneloop.tracking.tracker import Tracker


def tracker_from_settings(settings: Settings) -> Tracker:
    settings.workspace.mkdir(parents=True, exist_ok=True)
    return Tracker(
        settings.mlflow_tracking_uri,
        experiment_prefix=settings.mlflow.experiment_name,
        buffer=MetricBuffer(settings.workspace / "mlflow-metrics-buffer.jsonl"),
    )
