"""``tuneloop serve`` as a real process on a free loopback port, probed over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

STARTUP_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_serve_answers_ready_over_http(tmp_path: Path) -> None:
    port = free_port()
    env = os.environ | {
        "TUNELOOP_WORKSPACE": str(tmp_path / "workspace"),
        "TUNELOOP_DATABASE__URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "TUNELOOP_API__JWT_SECRET": "a-serve-test-secret-of-at-least-32-chars",
    }
    command = [
        sys.executable,
        "-m",
        "tuneloop.cli.main",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        ready = wait_ready(f"http://127.0.0.1:{port}/health/ready", process)
        checks = {"migrations": True, "database": True, "serving_models": True}
        assert ready.json() == {"status": "ready", "checks": checks}
        assert httpx.get(f"http://127.0.0.1:{port}/posts/count", timeout=5).status_code == 401
        # The loop's worker runs in the serving process by default and takes the lease.
        health = wait_health(f"http://127.0.0.1:{port}/health", "leading")
        assert int(health["worker"]["leader"].split(":")[1]) == process.pid
        login = httpx.get(f"http://127.0.0.1:{port}/ui/login", timeout=5)
        assert login.status_code == 200 and "API key or JWT" in login.text
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=15)
    assert f"dashboard at http://127.0.0.1:{port}/ui" in stdout
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(line["message"] == "tuneloop API started" for line in lines), stderr
    assert any(line.get("route") == "/posts/count" and line.get("status") == 401 for line in lines)
    assert "a-serve-test-secret" not in stderr


@pytest.mark.slow
def test_serve_no_worker_runs_no_worker(tmp_path: Path) -> None:
    port = free_port()
    env = os.environ | {
        "TUNELOOP_WORKSPACE": str(tmp_path / "workspace"),
        "TUNELOOP_DATABASE__URL": f"sqlite:///{tmp_path / 'serve.db'}",
    }
    command = [sys.executable, "-m", "tuneloop.cli.main", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--no-worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/health/ready", process)
        time.sleep(1.0)  # a worker would have ticked at once
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
        assert health["components"]["worker"] == "no_leader" and health["worker"] is None
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)


def wait_health(url: str, worker: str) -> dict[str, Any]:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        body: dict[str, Any] = httpx.get(url, timeout=5).json()
        if body["components"]["worker"] == worker:
            return body
        time.sleep(0.2)
    pytest.fail(f"/health never showed worker {worker!r}")


def wait_ready(url: str, process: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tuneloop serve exited with {process.returncode}: {process.stderr.read()}")  # type: ignore[union-attr]
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"tuneloop serve was not ready within {STARTUP_SECONDS} s")
