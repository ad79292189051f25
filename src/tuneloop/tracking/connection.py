"""Opening MLflow: the client for a tracking URI, and where artifacts go by default.

The only place ``mlflow`` is imported at run time (lazily, on first use: it takes seconds).
MLflow's own HTTP client retries 7 times with a backoff of up to minutes per request and
reads that policy only from environment variables; tuneloop retries and breaks circuits
itself (see ``guard``), so ``open_client`` sets MLflow's retries to 0 and its timeout to the
documented 30 s — with ``os.environ.setdefault``, so an operator's explicit setting wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from tuneloop.errors import ConfigurationError
from tuneloop.tracking.guard import MlflowGuard

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlflow import MlflowClient

T = TypeVar("T")

MLFLOW_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # tqdm bars do not belong in service logs
    # tuneloop runs unattended inside its users' infrastructure: no usage data leaves it
    # unless an operator opts in by setting the variable to false.
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI, or None for any other URI."""
    if not tracking_uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(tracking_uri).database
    if not database or database == ":memory:":
        raise ConfigurationError(f"MLflow needs a SQLite file, not {tracking_uri!r}")
    return Path(database)


def default_artifact_root(tracking_uri: str) -> str | None:
    """``mlartifacts/`` next to an embedded SQLite store; None (the server decides) otherwise."""
    db = sqlite_path(tracking_uri)
    if db is None:
        return None
    return (db.parent.resolve() / "mlartifacts").as_uri()


def open_client(tracking_uri: str) -> MlflowClient:
    for name, value in MLFLOW_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    db = sqlite_path(tracking_uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)  # SQLite creates files, not folders
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@dataclass
class Connection:
    """What the runs and registry functions need: a client, the guard, naming."""

    client: MlflowClient
    guard: MlflowGuard
    tracking_uri: str
    prefix: str
    artifact_root: str | None

    def call(self, operation: str, fn: Callable[[], T]) -> T:
        return self.guard.call(operation, fn)
