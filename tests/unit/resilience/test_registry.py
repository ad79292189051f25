"""The process breakers: one per service, the documented configs, mirrored into Prometheus."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from tuneloop.resilience.breaker import MLFLOW_BREAKER, OPENAI_BREAKER, BreakerState
from tuneloop.resilience.registry import (
    MeteredBreaker,
    breaker_state,
    process_breaker,
    reset_process_breakers,
)


@pytest.fixture(autouse=True)
def _fresh_breakers() -> Iterator[None]:
    reset_process_breakers()
    yield
    reset_process_breakers()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def gauge(name: str) -> dict[str, float | None]:
    metric = f"fine_tuning_{name}_circuit_breaker_state"
    return {
        state: REGISTRY.get_sample_value(metric, {"state": state})
        for state in ("CLOSED", "OPEN", "HALF_OPEN")
    }


def failures(name: str) -> float:
    return REGISTRY.get_sample_value(f"fine_tuning_{name}_failures_total") or 0.0


def test_one_breaker_per_service_with_the_documented_config() -> None:
    openai, mlflow = process_breaker("openai"), process_breaker("mlflow")
    assert process_breaker("openai") is openai and process_breaker("mlflow") is mlflow
    assert openai is not mlflow
    assert (openai.name, openai.config) == ("openai", OPENAI_BREAKER)
    assert (mlflow.name, mlflow.config) == ("mlflow", MLFLOW_BREAKER)
    with pytest.raises(ValueError, match="no circuit breaker named 'redis'"):
        process_breaker("redis")  # type: ignore[arg-type]


def test_threads_racing_to_create_it_get_the_same_breaker() -> None:
    start = threading.Barrier(8)
    seen: list[object] = []

    def grab() -> None:
        start.wait()
        seen.append(process_breaker("openai"))

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8 and all(breaker is seen[0] for breaker in seen)


def test_failures_and_transitions_update_the_metrics() -> None:
    breaker = process_breaker("openai")
    before, mlflow_before = failures("openai"), failures("mlflow")
    assert gauge("openai") == {"CLOSED": 1.0, "OPEN": 0.0, "HALF_OPEN": 0.0}
    for _ in range(OPENAI_BREAKER.failure_threshold):
        breaker.record_failure()
    assert breaker_state("openai") == "OPEN"
    assert gauge("openai") == {"CLOSED": 0.0, "OPEN": 1.0, "HALF_OPEN": 0.0}
    assert failures("openai") - before == OPENAI_BREAKER.failure_threshold
    assert failures("mlflow") == mlflow_before  # another service's counter is untouched


def test_half_open_and_recovery_are_published() -> None:
    clock = FakeClock()
    breaker = MeteredBreaker("mlflow", MLFLOW_BREAKER, clock=clock)
    for _ in range(MLFLOW_BREAKER.failure_threshold):
        breaker.record_failure()
    assert gauge("mlflow")["OPEN"] == 1.0
    clock.now += MLFLOW_BREAKER.recovery_timeout_s
    assert breaker.state is BreakerState.HALF_OPEN  # reading it advances the state
    assert gauge("mlflow") == {"CLOSED": 0.0, "OPEN": 0.0, "HALF_OPEN": 1.0}
    breaker.before_call()
    breaker.record_success()
    assert gauge("mlflow") == {"CLOSED": 1.0, "OPEN": 0.0, "HALF_OPEN": 0.0}


def test_reset_gives_a_fresh_closed_breaker() -> None:
    old = process_breaker("mlflow")
    for _ in range(MLFLOW_BREAKER.failure_threshold):
        old.record_failure()
    assert breaker_state("mlflow") == "OPEN"
    reset_process_breakers()
    assert gauge("mlflow") == {"CLOSED": 1.0, "OPEN": 0.0, "HALF_OPEN": 0.0}
    assert process_breaker("mlflow") is not old
    assert breaker_state("mlflow") == "CLOSED"
