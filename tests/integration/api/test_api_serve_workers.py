"""``tuneloop serve --workers 2``: /metrics counts every worker's requests, whichever answers.

Each uvicorn worker is a process with its own memory; without prometheus-client's
multiprocess mode a scrape would report only the counts of the worker that answered it.
The test first makes sure both workers served some of the requests (reading each worker's
own metrics file), so a scrape from either one can only total N if the counts are merged.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import test_api_serve
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from test_api_serve import free_port, wait_ready

from tuneloop.config import Settings
from tuneloop.wiring import engine_for, release_engine

ROUTE = {"method": "GET", "route": "/health/live", "status": "200"}
MAX_REQUESTS = 2000
SCRAPES = 8


def requests_in(samples: list[tuple[dict[str, str], float]]) -> float:
    return sum(value for labels, value in samples if labels == ROUTE)


def per_worker_counts(metrics_dir: Path) -> dict[str, float]:
    """Requests to ROUTE as each worker's own file records them, by pid."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = path.stem.removeprefix("counter_")
        samples = [
            (sample.labels, sample.value)
            for family in MultiProcessCollector.merge([str(path)])
            for sample in family.samples
            if sample.name == "tuneloop_http_requests_total"
        ]
        counts[pid] = requests_in(samples)
    return counts


def scraped_requests(base: str) -> tuple[float, dict[str, float]]:
    """ROUTE's request count in one scrape, and the OpenAI breaker's state gauge."""
    response = httpx.get(f"{base}/metrics", timeout=5)  # a new connection: any worker
    assert response.status_code == 200
    samples: list[tuple[dict[str, str], float]] = []
    breaker: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "tuneloop_http_requests_total":
                samples.append((sample.labels, sample.value))
            if sample.name == "fine_tuning_openai_circuit_breaker_state":
                assert set(sample.labels) == {"state"}  # one series per state, no pid
                breaker[sample.labels["state"]] = sample.value
    return requests_in(samples), breaker


@pytest.mark.slow
def test_metrics_add_up_across_two_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two workers import the app side by side: on 2 busy cores that takes a while.
    monkeypatch.setattr(test_api_serve, "STARTUP_SECONDS", 120)
    workspace = tmp_path / "workspace"
    database = f"sqlite:///{tmp_path / 'serve.db'}"
    # Migrate first: two workers starting on a fresh database would both try to.
    settings = Settings(workspace=workspace, database={"url": database})
    engine_for(settings)
    release_engine(settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"} | {
        "TUNELOOP_WORKSPACE": str(workspace),
        "TUNELOOP_DATABASE__URL": database,
    }
    command = [sys.executable, "-m", "tuneloop.cli.main", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(f"{base}/health/ready", process)
        [metrics_dir] = workspace.glob("prometheus-multiproc-*")

        sent, counts = 0, {}
        deadline = time.monotonic() + 60
        while sent < MAX_REQUESTS and time.monotonic() < deadline:
            for _ in range(20):  # a new connection each time, so either worker may take it
                assert httpx.get(f"{base}/health/live", timeout=5).status_code == 200
                sent += 1
            counts = per_worker_counts(metrics_dir)
            if sum(1 for count in counts.values() if count > 0) >= 2:
                break
        assert sum(1 for count in counts.values() if count > 0) == 2, (sent, counts)
        assert sum(counts.values()) == sent

        for _ in range(SCRAPES):  # whichever worker answers reports the whole server
            total, breaker = scraped_requests(base)
            assert total == sent
            assert breaker == {"CLOSED": 1.0, "OPEN": 0.0, "HALF_OPEN": 0.0}
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert not metrics_dir.exists()  # removed when the server stops
