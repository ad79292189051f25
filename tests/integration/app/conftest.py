"""Loop fixtures: a container on a manual clock over the settings' embedded MLflow store."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.domain.clock import ManualClock
from tuneloop.tracking.connection import MLFLOW_ENV_DEFAULTS
from tuneloop.wiring import Container, build_container

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


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
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def container(
    settings: Settings, engine: Engine, mlflow_template: Path, clock: ManualClock
) -> Container:
    settings.workspace.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mlflow_template, settings.workspace / "mlflow.db")
    pipeline = settings.pipeline.model_copy(update={"a_b_test_traffic_split": 0.5})
    return build_container(
        settings.model_copy(update={"pipeline": pipeline}), clock=clock, engine=engine
    )
