"""Builds adapters from Settings: the one place that picks implementations."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.store.db import make_engine
from tuneloop.store.migrate import is_up_to_date, upgrade

if TYPE_CHECKING:
    from tuneloop.tracking import Tracker


def engine_for(settings: Settings, *, migrate: bool = True) -> Engine:
    """The app database, migrated to the newest schema unless told otherwise."""
    settings.workspace.mkdir(parents=True, exist_ok=True)
    engine = _cached_engine(settings.database_url, settings.database.model_dump_json())
    if migrate and not is_up_to_date(engine):
        upgrade(engine)
    return engine


@lru_cache(maxsize=8)
def _cached_engine(url: str, database_settings_json: str) -> Engine:
    from tuneloop.config import DatabaseSettings

    return make_engine(url, DatabaseSettings.model_validate_json(database_settings_json))


def tracker_for(settings: Settings) -> Tracker:
    """The MLflow tracker (embedded sqlite store unless MLFLOW_TRACKING_URI says otherwise)."""
    from tuneloop.tracking import MetricBuffer, Tracker

    settings.workspace.mkdir(parents=True, exist_ok=True)
    return Tracker(
        settings.mlflow_tracking_uri,
        experiment_prefix=settings.mlflow.experiment_name,
        buffer=MetricBuffer(settings.workspace / "mlflow-metrics-buffer.jsonl"),
    )
