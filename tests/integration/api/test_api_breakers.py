"""MLflow down: the app's tracker trips the process breaker, and /health and /metrics say so.

"Down" is a real closed loopback port (connections refused), reached through the same
``tracker_for`` the pipeline and the deployment services use.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tuneloop.api.app import create_app
from tuneloop.config import Settings
from tuneloop.resilience.breaker import MLFLOW_BREAKER
from tuneloop.resilience.registry import process_breaker, reset_process_breakers
from tuneloop.tracking import CircuitOpenError, RetryPolicy, TrackingUnavailableError
from tuneloop.wiring import tracker_for

NO_WAIT = RetryPolicy(attempts=2, initial_wait_s=0.0, max_wait_s=0.0)


@pytest.fixture(autouse=True)
def _fresh_breakers() -> Iterator[None]:
    reset_process_breakers()
    yield
    reset_process_breakers()  # an OPEN breaker must not leak into later tests


@pytest.fixture
def mlflow_down(sqlite_settings: Settings) -> Settings:
    """The SQLite app settings, with MLflow at an http:// URI nobody listens on."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    mlflow = sqlite_settings.mlflow.model_copy(update={"tracking_uri": f"http://127.0.0.1:{port}"})
    return sqlite_settings.model_copy(update={"mlflow": mlflow})


def scrape(client: TestClient) -> dict[str, dict[str, float]]:
    """Sample values by sample name, then by the ``state`` label ("" when unlabelled)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    samples: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[sample.labels.get("state", "")] = sample.value
    return samples


def test_an_unreachable_mlflow_opens_the_breaker_that_health_and_metrics_show(
    mlflow_down: Settings,
) -> None:
    with TestClient(create_app(mlflow_down)) as client:
        assert client.get("/health").json()["components"]["mlflow_circuit_breaker"] == "CLOSED"
        failures_before = scrape(client)["fine_tuning_mlflow_failures_total"][""]

        tracker = tracker_for(mlflow_down)
        assert tracker.breaker is process_breaker("mlflow")  # not a private one
        tracker.guard.retry = NO_WAIT  # keep the test fast: no backoff between attempts
        for _ in range(MLFLOW_BREAKER.failure_threshold):
            with pytest.raises(TrackingUnavailableError):
                tracker.experiment_id("acme")
        with pytest.raises(CircuitOpenError):  # now it fails fast, without trying
            tracker.experiment_id("acme")

        health = client.get("/health")
        metrics = scrape(client)

    assert health.status_code == 200  # MLflow is optional: degraded, not unavailable
    body = health.json()
    assert body["status"] == "degraded"
    assert body["components"]["mlflow_circuit_breaker"] == "OPEN"
    assert body["components"]["openai_circuit_breaker"] == "CLOSED"
    assert body["components"]["mlflow"] == "unreachable"
    assert metrics["fine_tuning_mlflow_circuit_breaker_state"] == {
        "CLOSED": 0.0,
        "OPEN": 1.0,
        "HALF_OPEN": 0.0,
    }
    assert metrics["fine_tuning_openai_circuit_breaker_state"]["CLOSED"] == 1.0
    failures = metrics["fine_tuning_mlflow_failures_total"][""] - failures_before
    assert failures == MLFLOW_BREAKER.failure_threshold  # the refused call is not a failure
