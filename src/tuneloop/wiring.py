"""Builds adapters from Settings: the one place that picks implementations."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.store.db import make_engine
from tuneloop.store.migrate import is_up_to_date, upgrade

if TYPE_CHECKING:
    from tuneloop.experiments.references import Servable
    from tuneloop.tracking import Tracker


_ENGINES: dict[tuple[str, str], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(settings: Settings, *, migrate: bool = True) -> Engine:
    """The app database (one engine per URL per process), migrated unless told otherwise."""
    settings.workspace.mkdir(parents=True, exist_ok=True)
    key = (settings.database_url, settings.database.model_dump_json())
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = make_engine(settings.database_url, settings.database)
    if migrate and not is_up_to_date(engine):
        upgrade(engine)
    return engine


def release_engine(settings: Settings) -> None:
    """Close the engine's pooled connections and forget it (tests, shutdown).

    Engines are never evicted behind the caller's back: an engine dropped while its pool
    holds open connections would close them only when garbage-collected.
    """
    key = (settings.database_url, settings.database.model_dump_json())
    with _ENGINES_LOCK:
        engine = _ENGINES.pop(key, None)
    if engine is not None:
        engine.dispose()


def tracker_for(settings: Settings) -> Tracker:
    """The MLflow tracker (embedded sqlite store unless MLFLOW_TRACKING_URI says otherwise)."""
    from tuneloop.tracking.factory import tracker_from_settings

    return tracker_from_settings(settings)


def servable_for(settings: Settings) -> Servable:
    """What serving can reach besides the registry, for validating model references."""
    from tuneloop.experiments.references import Servable

    return Servable(
        upstreams=frozenset(settings.serving.upstreams),
        provider=settings.openai.api_key is not None,
    )
