"""The composition root: builds every implementation from Settings, once, and hands it down.

``build_container(settings, clock=...)`` gives the ``Container`` the application layer
(``tuneloop.app``) works with: the store, the clock, the tracker, the trainer backend and
the deployment manager. Entry points build one container; nothing below rebuilds them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.domain.clock import Clock, ScaledClock, SystemClock
from tuneloop.store.db import make_engine
from tuneloop.store.migrate import is_up_to_date, upgrade

if TYPE_CHECKING:
    from tuneloop.experiments.references import Servable
    from tuneloop.rollout.manager import DeploymentManager
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


def choose_trainer(
    settings: Settings,
    engine: Engine,
    tenant_id: str,
    *,
    run_id: str,
    init_adapter: Path | None = None,
) -> Any:
    """The training backend ``settings.training.backend`` names, for one run: the one place
    that picks it (``tuneloop.train.backends.build_trainer``: local, openai or ray)."""
    from tuneloop.store.posts import iter_hook_body
    from tuneloop.train.backends import build_trainer

    return build_trainer(
        settings,
        tenant_id=tenant_id,
        run_id=run_id,
        tiny_posts=lambda: iter_hook_body(engine, tenant_id),
        init_adapter=init_adapter,
    )


@dataclass
class Container:
    """Everything the application layer and the stages use, built once from ``Settings``.

    The tracker and the deployment manager are made on first use (MLflow loads lazily, so
    an API that never trains starts fast); the stages get them through ``RunContext.services``
    and never build their own.
    """

    settings: Settings
    engine: Engine
    clock: Clock = field(default_factory=SystemClock)
    trainer_factory: Callable[..., Any] = choose_trainer
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _tracker: Tracker | None = field(default=None, repr=False)
    _deployments: DeploymentManager | None = field(default=None, repr=False)
    _runner: Any = field(default=None, repr=False)

    @property
    def tracker(self) -> Tracker:
        with self._lock:
            if self._tracker is None:
                self._tracker = tracker_for(self.settings)
            return self._tracker

    @property
    def deployments(self) -> DeploymentManager:
        tracker = self.tracker
        with self._lock:
            if self._deployments is None:
                from tuneloop.rollout.manager import DeploymentManager
                from tuneloop.rollout.safety import ArtifactProbe
                from tuneloop.serving.probe import ServingProbe

                probe = ServingProbe(self.settings, ArtifactProbe(tracker))
                self._deployments = DeploymentManager(
                    self.engine, tracker=tracker, settings=self.settings.rollout, probe=probe
                )
            return self._deployments

    def trainer(
        self, settings: Settings, tenant_id: str, *, run_id: str, init_adapter: Path | None = None
    ) -> Any:
        """The trainer for one run (``settings``: the deployment's, with the run's config)."""
        return self.trainer_factory(
            settings, self.engine, tenant_id, run_id=run_id, init_adapter=init_adapter
        )


_SCALED: dict[float, ScaledClock] = {}
_SCALED_LOCK = threading.Lock()


def clock_for(settings: Settings) -> Clock:
    """The wall clock, or a scaled one when ``worker.clock_speed`` says so (trials, demos).

    One scaled clock per speed and process: ``tuneloop serve`` builds its API container and
    its worker separately, and two scaled clocks started a second apart would disagree by
    ``speed`` seconds (an hour at 3600) about when an event happened or a stage began.
    """
    speed = settings.worker.clock_speed
    if speed == 1.0:
        return SystemClock()
    with _SCALED_LOCK:
        return _SCALED.setdefault(speed, ScaledClock(speed))


def build_container(
    settings: Settings, *, clock: Clock | None = None, engine: Engine | None = None
) -> Container:
    """The composition root: the store (migrated), the clock, and lazily the rest."""
    return Container(
        settings=settings,
        engine=engine if engine is not None else engine_for(settings),
        clock=clock or SystemClock(),
    )
