"""A real MLflow tracking store per test: SQLite in tmp_path, artifacts in tmp_path.

Creating an MLflow database runs its ~50 Alembic migrations (seconds), so the session makes
one migrated, empty store and every test gets its own copy of that file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tuneloop.tracking import RetryPolicy, Tracker
from tuneloop.tracking.connection import MLFLOW_ENV_DEFAULTS

if TYPE_CHECKING:
    from mlflow import MlflowClient

# Tests need not wait between retries; the attempts still happen.
NO_WAIT = RetryPolicy(attempts=3, initial_wait_s=0.0, max_wait_s=0.0)


@pytest.fixture(autouse=True)
def _mlflow_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without MLflow's HTTP settings, so the tracker's defaults apply
    (the retry-counting test depends on them), and ends without what the tracker set."""
    for name in MLFLOW_ENV_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    yield
    for name in MLFLOW_ENV_DEFAULTS:
        os.environ.pop(name, None)  # then monkeypatch restores any value the developer had


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow SQLite database (tracking and registry tables)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    uri = f"sqlite:///{path}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.search_experiments()
    client.search_registered_models()
    return path


@pytest.fixture(scope="session")
def new_store(migrated_store: Path) -> Callable[[Path], str]:
    """Makes a fresh store in a folder (a copy of the migrated one); returns its URI."""

    def make(folder: Path) -> str:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_store, folder / "mlflow.db")
        return f"sqlite:///{folder / 'mlflow.db'}"

    return make


@pytest.fixture
def store_uri(new_store: Callable[[Path], str], tmp_path: Path) -> str:
    return new_store(tmp_path / "store")


@pytest.fixture
def tracker(store_uri: str, tmp_path: Path) -> Tracker:
    return Tracker(store_uri, artifact_root=tmp_path / "artifacts", retry=NO_WAIT)


@pytest.fixture
def mlflow_client(store_uri: str) -> MlflowClient:
    """MLflow's own client on the same store: how the tests check what the tracker did."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=store_uri, registry_uri=store_uri)


@pytest.fixture
def adapter_dir(tmp_path: Path) -> Path:
    """A LoRA adapter's files as PEFT writes them (content is opaque to tracking)."""
    folder = tmp_path / "adapter-out"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"r": 8, "lora_alpha": 16}', encoding="utf-8")
    (folder / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 64)
    return folder
