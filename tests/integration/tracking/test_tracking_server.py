"""The register/alias flow over HTTP, against a real ``mlflow`` server subprocess.

The server is started with the command ``ui_command`` prints for users (plus one worker),
on a copy of the migrated store and a free loopback port. If it does not answer within
60 s the module is skipped, saying why (``TUNELOOP_REQUIRE_SERVICES=1`` fails instead).
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tuneloop.tracking import RetryPolicy, Tracker, ui_command

STARTUP_TIMEOUT_S = 60.0
NO_WAIT = RetryPolicy(attempts=3, initial_wait_s=0.0, max_wait_s=0.0)


@dataclass(frozen=True)
class Server:
    uri: str
    artifacts_dir: Path


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def _answers(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _unavailable(reason: str) -> None:
    if os.environ.get("TUNELOOP_REQUIRE_SERVICES") == "1":
        pytest.fail(f"TUNELOOP_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def mlflow_server(
    new_store: Callable[[Path], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("mlflow-server")
    store = new_store(folder)
    port = _free_port()
    args = shlex.split(ui_command(store, port=port))
    command = [sys.executable, "-m", "mlflow", *args[1:], "--workers", "1"]
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        # MLflow 3 servers also start a pool of job-runner processes (GenAI evaluation
        # jobs); tuneloop needs none, and on a small machine they slow everything down.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    log_path = folder / "server.log"
    with log_path.open("wb") as log:  # its own process group: teardown stops all of it
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=log, stderr=log, start_new_session=True
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _answers(uri):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                limit = f"{STARTUP_TIMEOUT_S:.0f} s"
                _unavailable(f"mlflow server did not answer on {uri} within {limit}:\n{tail}")
            time.sleep(0.25)
        yield Server(uri, folder / "mlartifacts")
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (the CLI and its uvicorn), SIGKILL if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def test_register_alias_promote_and_download_over_http(
    mlflow_server: Server, adapter_dir: Path, tmp_path: Path
) -> None:
    tracker = Tracker(mlflow_server.uri, experiment_prefix="http", retry=NO_WAIT)
    client = MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)
    run_id = tracker.start_run("acme", "p-001", params={"epochs": 1})
    assert tracker.log_metrics(run_id, {"loss": 0.5}, step=1) == "logged"

    first = tracker.register_candidate("acme", run_id, adapter_dir, dataset_hash="h1")
    again = tracker.register_candidate("acme", run_id, adapter_dir, dataset_hash="h1")
    promotion = tracker.promote("acme", first.version)
    local = tracker.download_adapter("acme", first.version, tmp_path / "download")
    tracker.end_run(run_id)

    assert again.version == first.version == 1
    assert len(client.search_model_versions("name = 'http-acme'")) == 1
    challenger = client.get_model_version_by_alias("http-acme", "challenger")
    champion = client.get_model_version_by_alias("http-acme", "champion")
    assert int(challenger.version) == int(champion.version) == 1
    assert challenger.source == f"runs:/{run_id}/adapter"
    assert promotion.previous is None
    assert tracker.start_run("acme", "p-001", params={"epochs": 1}) == run_id
    assert client.get_metric_history(run_id, "loss")[0].value == 0.5
    experiment = client.get_experiment_by_name("http-acme")
    assert experiment is not None
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # proxied by the server
    stored = list(mlflow_server.artifacts_dir.rglob("adapter_model.safetensors"))
    assert len(stored) == 1
    assert (local / "adapter_model.safetensors").read_bytes() == stored[0].read_bytes()
