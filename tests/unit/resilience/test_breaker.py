"""The circuit breaker's state machine, driven by a fake clock."""

from __future__ import annotations

import pytest

from tuneloop.errors import ExternalServiceError
from tuneloop.resilience.breaker import (
    MLFLOW_BREAKER,
    OPENAI_BREAKER,
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.before_call()
        breaker.record_failure()


def test_documented_defaults() -> None:
    assert (MLFLOW_BREAKER.failure_threshold, MLFLOW_BREAKER.recovery_timeout_s) == (5, 60.0)
    assert (OPENAI_BREAKER.failure_threshold, OPENAI_BREAKER.recovery_timeout_s) == (3, 120.0)


def test_stays_closed_below_threshold_and_below_the_failure_rate(clock: FakeClock) -> None:
    breaker = CircuitBreaker("mlflow", MLFLOW_BREAKER, clock=clock)
    _fail(breaker, 4)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.failure_count == 4
    for _ in range(10):
        breaker.record_success()
    _fail(breaker, 4)
    assert breaker.state is BreakerState.CLOSED  # 8 failures of 18 calls: under 50 %
    _fail(breaker, 2)
    assert breaker.state is BreakerState.OPEN  # 10 of 20


def test_a_busy_service_failing_a_quarter_of_its_calls_stays_in_use(clock: FakeClock) -> None:
    """The old breaker opened on 3 consecutive failures, which a busy upstream failing 26 % at
    random produces every few dozen calls: clients saw 70 % errors, mostly its own 503s."""
    import random

    config = BreakerConfig(failure_threshold=3, recovery_timeout_s=5, minimum_calls=20)
    breaker = CircuitBreaker("upstream", config, clock=clock)
    rng = random.Random(7)
    refused = 0
    for _ in range(5000):
        clock.advance(0.01)
        try:
            breaker.before_call()
        except CircuitOpenError:
            refused += 1
            continue
        if rng.random() < 0.26:
            breaker.record_failure()
        else:
            breaker.record_success()
    assert refused == 0


def test_old_failures_slide_out_of_the_window(clock: FakeClock) -> None:
    breaker = CircuitBreaker("mlflow", MLFLOW_BREAKER, clock=clock)
    _fail(breaker, 4)
    clock.advance(MLFLOW_BREAKER.window_s + 1)
    assert breaker.failure_count == 0
    _fail(breaker, 4)
    assert breaker.state is BreakerState.CLOSED


def test_back_pressure_counts_neither_way(clock: FakeClock) -> None:
    breaker = CircuitBreaker("openai", OPENAI_BREAKER, clock=clock)
    for _ in range(20):
        breaker.before_call()
        breaker.record_ignored()
    assert breaker.failure_count == 0 and breaker.state is BreakerState.CLOSED


def test_half_open_admits_several_trials_and_closes_on_enough_successes(
    clock: FakeClock,
) -> None:
    config = BreakerConfig(failure_threshold=3, recovery_timeout_s=2, half_open_calls=3)
    breaker = CircuitBreaker("upstream", config, clock=clock)
    _fail(breaker, 3)
    clock.advance(2)
    for _ in range(3):
        breaker.before_call()  # three trials at once
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    breaker.record_failure()  # one failed trial of three is tolerated
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record_success()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    clock.advance(10)
    _fail(breaker, 3)
    clock.advance(2)
    _fail(breaker, 2)  # two of three: back to OPEN
    assert breaker.state is BreakerState.OPEN


def test_opens_at_threshold_and_refuses_calls(clock: FakeClock) -> None:
    breaker = CircuitBreaker("mlflow", MLFLOW_BREAKER, clock=clock)
    _fail(breaker, 5)
    assert breaker.state is BreakerState.OPEN
    clock.advance(20)
    with pytest.raises(CircuitOpenError) as info:
        breaker.before_call()
    assert isinstance(info.value, ExternalServiceError)
    assert info.value.service == "mlflow"
    assert info.value.retry_after_s == pytest.approx(40)


def test_half_open_after_recovery_timeout_lets_exactly_one_trial(clock: FakeClock) -> None:
    breaker = CircuitBreaker("openai", OPENAI_BREAKER, clock=clock)
    _fail(breaker, 3)
    clock.advance(119.9)
    assert breaker.state is BreakerState.OPEN
    clock.advance(0.1)
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()  # the trial
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # a second caller while the trial is in flight


def test_a_trial_that_never_reports_back_does_not_block_forever(clock: FakeClock) -> None:
    breaker = CircuitBreaker("mlflow", MLFLOW_BREAKER, clock=clock)
    _fail(breaker, 5)
    clock.advance(60)
    breaker.before_call()  # its caller is cancelled and records nothing
    clock.advance(59)
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    clock.advance(1)
    breaker.before_call()  # a new trial
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_successful_trial_closes(clock: FakeClock) -> None:
    breaker = CircuitBreaker("mlflow", MLFLOW_BREAKER, clock=clock)
    _fail(breaker, 5)
    clock.advance(60)
    breaker.before_call()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.failure_count == 0
    breaker.before_call()  # calls flow again


def test_failed_trial_reopens_and_restarts_recovery_clock(clock: FakeClock) -> None:
    breaker = CircuitBreaker("mlflow", MLFLOW_BREAKER, clock=clock)
    _fail(breaker, 5)
    clock.advance(60)
    _fail(breaker, 1)  # one failed trial is enough to reopen
    assert breaker.state is BreakerState.OPEN
    clock.advance(59)
    assert breaker.state is BreakerState.OPEN
    clock.advance(1)
    assert breaker.state is BreakerState.HALF_OPEN


def test_transitions_are_reported_in_order(clock: FakeClock) -> None:
    seen: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        "mlflow",
        BreakerConfig(failure_threshold=2, recovery_timeout_s=10),
        clock=clock,
        on_transition=lambda old, new: seen.append((old.value, new.value)),
    )
    _fail(breaker, 2)
    clock.advance(10)
    breaker.before_call()
    breaker.record_failure()
    clock.advance(10)
    breaker.before_call()
    breaker.record_success()
    assert seen == [
        ("CLOSED", "OPEN"),
        ("OPEN", "HALF_OPEN"),
        ("HALF_OPEN", "OPEN"),
        ("OPEN", "HALF_OPEN"),
        ("HALF_OPEN", "CLOSED"),
    ]


def test_call_counts_only_failures_that_is_failure_accepts(clock: FakeClock) -> None:
    breaker = CircuitBreaker("svc", BreakerConfig(failure_threshold=2), clock=clock)

    def not_found() -> None:
        raise KeyError("answered: no such thing")

    def down() -> None:
        raise ConnectionError("refused")

    is_failure = lambda exc: isinstance(exc, ConnectionError)  # noqa: E731
    for _ in range(2):
        with pytest.raises(KeyError):
            breaker.call(not_found, is_failure=is_failure)
    assert breaker.state is BreakerState.CLOSED
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(down, is_failure=is_failure)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: 42)
    clock.advance(60)
    assert breaker.call(lambda: 42) == 42
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(
    "changes",
    [
        {"failure_threshold": 0},
        {"recovery_timeout_s": -1.0},
        {"failure_rate": 0.0},
        {"window_s": 0.0},
        {"half_open_calls": 0},
    ],
)
def test_rejects_nonsense_config(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        BreakerConfig(**changes)  # type: ignore[arg-type]
