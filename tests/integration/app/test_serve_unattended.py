"""``tuneloop serve`` left alone on a scaled clock: a data trigger starts a run by itself.

A real ``tuneloop serve`` process (real HTTP, its in-process worker on, the hosted
``openai`` backend against the fake fine-tuning API, ``worker.clock_speed`` 3600). The test
only plays a client: it posts the tenant's posts over HTTP and watches
``/fine-tuning/status`` until the run the data trigger started ends ``promoted`` and the
MLflow ``champion`` alias points at its version (the tenant's first candidate: bootstrap).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tuneloop.domain.clock import SystemClock
from tuneloop.posts.schema import PostIn
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts
from tuneloop.train.hosted.fake import API_KEY, FakeFineTuning, serve
from tuneloop.wiring import Container

pytest.importorskip("mlflow", reason="the train extra (mlflow) is not installed")
pytestmark = pytest.mark.slow

TENANT = "acme"
MODEL = f"tuneloop-{TENANT}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fake_api() -> Iterator[str]:
    fake = FakeFineTuning(
        SystemClock(), process_s=0.1, validate_s=0.1, queue_s=0.1, step_s=0.1, steps_per_epoch=4
    )
    with serve(fake) as base_url:
        yield base_url


def serve_env(container: Container, base_url: str) -> dict[str, str]:
    settings = container.settings
    return dict(os.environ) | {
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "TUNELOOP_WORKSPACE": str(settings.workspace),
        "TUNELOOP_DATABASE__URL": settings.database.url,
        "TUNELOOP_API__JWT_SECRET": "a-serve-test-secret-of-at-least-32-chars",
        "TUNELOOP_WORKER__CLOCK_SPEED": "3600",
        "TUNELOOP_WORKER__TICK_SECONDS": "0.2",
        "TUNELOOP_TRIGGERS__MIN_NEW_EXAMPLES": "30",
        "TUNELOOP_PIPELINE__TRAINING_DATA_THRESHOLD": "30",
        "TUNELOOP_TRIGGERS__DRIFT_DROP": "0.99",
        "TUNELOOP_TRIGGERS__MAX_MODEL_AGE_DAYS": "10000",
        "TUNELOOP_TRIGGERS__COOLDOWN_HOURS": "0",
        "TUNELOOP_TRAINING__BACKEND": "openai",
        "TUNELOOP_TRAINING__EPOCHS": "2",
        "TUNELOOP_TRAINING__OPENAI__POLL_INITIAL_SECONDS": "0.05",
        "TUNELOOP_TRAINING__OPENAI__POLL_MAX_SECONDS": "0.2",
        "TUNELOOP_OPENAI__BASE_URL": base_url,
        "TUNELOOP_OPENAI__API_KEY": API_KEY,
    }


def wait(what: str, probe: Any, seconds: float, process: subprocess.Popen[str]) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _, stderr = process.communicate()
            pytest.fail(f"tuneloop serve exited while waiting for {what}:\n{stderr[-3000:]}")
        try:
            found = probe()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"not in {seconds}s: {what}")


def test_serve_left_alone_trains_and_promotes_on_a_data_trigger(
    container: Container, engine: Engine, fake_api: str
) -> None:
    from mlflow import MlflowClient

    key = create_api_key(engine, TENANT, role=Role.ADMIN, name="client").plaintext
    headers = {"Authorization": f"Bearer {key}"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "tuneloop.cli.main", "serve", "--port", str(port)]
    process = subprocess.Popen(
        command,
        env=serve_env(container, fake_api),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait("ready", lambda: httpx.get(f"{url}/health/ready").status_code == 200, 90, process)
        # The client's posts: a week of them, a few dozen above the engagement threshold.
        rows = generate_posts(SyntheticSpec(posts=400, seed=5, weeks=1), now=datetime.now(UTC))
        body = [PostIn.model_construct(**row).model_dump(mode="json") for row in rows]
        answer = httpx.post(f"{url}/posts", json={"posts": body}, headers=headers, timeout=60)
        assert answer.status_code < 300, answer.text

        def run_id() -> str | None:
            page = httpx.get(f"{url}/fine-tuning/runs", headers=headers).json()
            return page["items"][0]["pipeline_id"] if page["items"] else None

        pipeline_id = wait("a run started by the worker", run_id, 60, process)

        def finished() -> dict[str, Any] | None:
            status = httpx.get(f"{url}/fine-tuning/status/{pipeline_id}", headers=headers)
            view: dict[str, Any] = status.json()
            return view if view["finished"] else None

        view = wait("the run finishes", finished, 120, process)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert view["run_status"] == "promoted", (view["message"], view["error"], stderr[-3000:])
    assert view["trigger"] == "data"
    assert view["model_version"]["version"] == "1"
    mlflow = MlflowClient(tracking_uri=container.settings.mlflow_tracking_uri)
    assert str(mlflow.get_model_version_by_alias(MODEL, "champion").version) == "1"
