"""MLflow down: retries, the circuit breaker, the metric buffer and its flush.

"Down" is real network failure, not a patched client: a closed port (connection refused)
or a socket server that accepts and hangs up, counting connections so the test can see
each retry — and see that an open breaker stops the tracker from trying at all.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tuneloop.errors import ExternalServiceError
from tuneloop.resilience.breaker import MLFLOW_BREAKER, BreakerState, CircuitBreaker
from tuneloop.tracking import (
    BufferedMetric,
    CircuitOpenError,
    MetricBuffer,
    RetryPolicy,
    Tracker,
    TrackingUnavailableError,
)

NO_WAIT = RetryPolicy(attempts=3, initial_wait_s=0.0, max_wait_s=0.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class HangUpServer:
    """Accepts TCP connections on loopback and closes them at once, counting them."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)  # so the thread notices close() soon
        self.port = self._socket.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()


@pytest.fixture
def hang_up_server() -> Iterator[HangUpServer]:
    server = HangUpServer()
    yield server
    server.close()


@pytest.fixture
def closed_port_uri() -> str:
    """An http:// URI nobody listens on: connections are refused at once."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_each_call_retries_three_times_then_the_breaker_stops_trying(
    hang_up_server: HangUpServer,
) -> None:
    clock = FakeClock()
    down = Tracker(
        f"http://127.0.0.1:{hang_up_server.port}",
        breaker=CircuitBreaker("mlflow", MLFLOW_BREAKER, clock=clock),
        retry=NO_WAIT,
    )

    for call in range(1, 6):
        assert down.log_metrics("0" * 32, {"loss": 1.0}, step=call) == "buffered"
        assert hang_up_server.connections == 3 * call  # three attempts per call
    assert down.breaker.state is BreakerState.OPEN

    assert down.log_metrics("0" * 32, {"loss": 1.0}, step=6) == "buffered"
    assert hang_up_server.connections == 15  # refused by the breaker, not by the network
    clock.now += 60
    assert down.breaker.state is BreakerState.HALF_OPEN
    assert down.log_metrics("0" * 32, {"loss": 1.0}, step=7) == "buffered"
    assert hang_up_server.connections == 18  # one trial call (with its retries) failed
    assert down.breaker.state is BreakerState.OPEN
    assert len(down.buffer) == 7


def test_metrics_buffered_while_down_are_flushed_when_mlflow_is_back(
    closed_port_uri: str, store_uri: str, mlflow_client: MlflowClient, tmp_path: Path
) -> None:
    buffer_file = tmp_path / "workspace" / "mlflow-metrics-buffer.jsonl"
    up = Tracker(store_uri, artifact_root=tmp_path / "artifacts", retry=NO_WAIT)
    run_id = up.start_run("acme", "p-001")
    # The same tracking server, seen while it is unreachable:
    down = Tracker(closed_port_uri, buffer=MetricBuffer(buffer_file), retry=NO_WAIT)

    outcomes = [
        down.log_metrics(run_id, {"loss": 2.0 / (step + 1)}, step=step) for step in range(6)
    ]

    assert outcomes == ["buffered"] * 6
    assert down.breaker.state is BreakerState.OPEN
    assert down.breaker.failure_count == 5  # the sixth call was not even tried
    assert len(buffer_file.read_text().splitlines()) == 6
    assert mlflow_client.get_metric_history(run_id, "loss") == []

    # Back up — here as a new process on the same workspace, which finds the buffer file.
    back = Tracker(store_uri, buffer=MetricBuffer(buffer_file), retry=NO_WAIT)
    assert back.log_metrics(run_id, {"loss": 0.1}, step=6) == "logged"

    history = mlflow_client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (step, 2.0 / (step + 1)) for step in range(6)
    ] + [(6, 0.1)]
    assert len(back.buffer) == 0
    assert not buffer_file.exists()


def test_flush_drops_what_mlflow_refuses_and_delivers_the_rest(
    tracker: Tracker, mlflow_client: MlflowClient
) -> None:
    run_id = tracker.start_run("acme", "p-001")
    other_run = tracker.start_run("acme", "p-002")
    at = 1_700_000_000_000
    tracker.buffer.append(
        [
            BufferedMetric("f" * 32, "loss", 1.0, at, 0),  # its run was deleted meanwhile
            BufferedMetric(run_id, "loss", 0.5, at, 1),
            BufferedMetric(other_run, "../loss", 0.5, at, 1),  # a name MLflow refuses
        ]
    )

    result = tracker.flush()

    assert (result.delivered, result.dropped, result.remaining) == (1, 2, 0)
    assert [m.value for m in mlflow_client.get_metric_history(run_id, "loss")] == [0.5]
    assert mlflow_client.get_run(other_run).data.metrics == {}


def test_registration_is_never_buffered(
    closed_port_uri: str, adapter_dir: Path, tmp_path: Path
) -> None:
    down = Tracker(closed_port_uri, buffer=MetricBuffer(tmp_path / "buf.jsonl"), retry=NO_WAIT)

    with pytest.raises(TrackingUnavailableError) as unavailable:
        down.register_candidate("acme", "0" * 32, adapter_dir, dataset_hash="h")
    assert isinstance(unavailable.value, ExternalServiceError)
    assert unavailable.value.service == "mlflow"
    for _ in range(4):
        with pytest.raises(TrackingUnavailableError):
            down.start_run("acme", "p-001")
    with pytest.raises(CircuitOpenError):
        down.register_candidate("acme", "0" * 32, adapter_dir, dataset_hash="h")
    assert len(down.buffer) == 0
    assert not (tmp_path / "buf.jsonl").exists()
