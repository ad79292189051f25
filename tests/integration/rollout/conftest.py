"""Rollout fixtures: the settings' embedded MLflow store, two registered versions of the
tenant's model (v1 champion, v2 candidate), and an A/B test that recommends v2."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from rollout_world import MODEL, TENANT, World
from sqlalchemy import Engine

from registry_helpers import register_version
from tuneloop.app.simulation import simulate_traffic
from tuneloop.config import Settings
from tuneloop.experiments import service
from tuneloop.experiments.service import ModelRef, two_arms
from tuneloop.pipeline.promotion import promote_first_champion
from tuneloop.rollout.manager import DeploymentManager
from tuneloop.synthetic.traffic import TrafficSpec
from tuneloop.tracking import Tracker
from tuneloop.tracking.connection import MLFLOW_ENV_DEFAULTS
from tuneloop.wiring import tracker_for


@pytest.fixture(autouse=True)
def _mlflow_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in MLFLOW_ENV_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    yield
    for name in MLFLOW_ENV_DEFAULTS:
        os.environ.pop(name, None)


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow SQLite store (its migrations take seconds: made once)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{path}", registry_uri=f"sqlite:///{path}")
    client.search_experiments()
    client.search_registered_models()
    return path


@pytest.fixture
def tracker(settings: Settings, mlflow_template: Path) -> Tracker:
    settings.workspace.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mlflow_template, settings.workspace / "mlflow.db")
    return tracker_for(settings)


def _register(engine: Engine, tracker: Tracker, folder: Path, run: str) -> str:
    return register_version(engine, tracker, folder, run, tenant=TENANT)


@pytest.fixture
def world(engine: Engine, settings: Settings, tracker: Tracker, tmp_path: Path) -> World:
    """v1 is champion; v2 won an A/B test against it (a clear lift, significant)."""
    first = _register(engine, tracker, tmp_path / "adapter-1", "p-001")
    second = _register(engine, tracker, tmp_path / "adapter-2", "p-002")
    promote_first_champion(engine, settings, TENANT, version=first)
    baseline, candidate = ModelRef(MODEL, first), ModelRef(MODEL, second)
    row = service.create_experiment(
        engine, TENANT, arms=two_arms(baseline, candidate, 0.5), duration_hours=24
    )
    spec = TrafficSpec(row.key, (), units=3000, lift=0.4, cost_change=-0.3, seed=11)
    simulate_traffic(engine, TENANT, row.key, spec=spec)
    manager = DeploymentManager(engine, tracker=tracker, settings=settings.rollout)
    return World(engine, settings, tracker, manager, row.key, candidate, baseline)
