"""A circuit breaker: stops calling an outside system that keeps failing, then probes it.

States (``BreakerState``) and transitions::

    CLOSED ──(failure_threshold consecutive failures)──▶ OPEN
    OPEN ──(recovery_timeout_s elapsed)──▶ HALF_OPEN       (one trial call is let through)
    HALF_OPEN ──trial succeeds──▶ CLOSED
    HALF_OPEN ──trial fails────▶ OPEN                       (the recovery clock restarts)

A trial that never reports back (its caller was cancelled) is given up after another
recovery period, so the breaker cannot stay stuck in HALF_OPEN.

Pure and clock-injectable: no I/O, no sleeping; ``clock`` returns seconds (monotonic).
Thread-safe, so one breaker can guard a client shared by threads.

Usage, either around a call::

    breaker = CircuitBreaker("mlflow", MLFLOW_BREAKER)
    result = breaker.call(fetch)                 # raises CircuitOpenError while open

or by hand, when only some errors mean "the service is down"::

    breaker.before_call()                        # raises CircuitOpenError
    try:
        result = fetch()
    except TimeoutError:
        breaker.record_failure()
        raise
    except Exception:
        breaker.record_success()                 # it answered, just not with what we wanted
        raise
    breaker.record_success()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from tuneloop.errors import ExternalServiceError

T = TypeVar("T")
Clock = Callable[[], float]
Listener = Callable[["BreakerState", "BreakerState"], None]  # (old, new)


class BreakerState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass(frozen=True)
class BreakerConfig:
    failure_threshold: int = 5
    recovery_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if self.recovery_timeout_s < 0:
            raise ValueError("recovery_timeout_s must not be negative")


# The documented operational defaults.
MLFLOW_BREAKER = BreakerConfig(failure_threshold=5, recovery_timeout_s=60.0)
OPENAI_BREAKER = BreakerConfig(failure_threshold=3, recovery_timeout_s=120.0)


class CircuitOpenError(ExternalServiceError):
    """The breaker refused the call without trying: the service failed recently."""

    def __init__(self, service: str, retry_after_s: float) -> None:
        super().__init__(service, f"circuit open; next trial in {retry_after_s:.0f} s")
        self.retry_after_s = retry_after_s


class CircuitBreaker:
    """Counts consecutive failures of one service and fails fast while it is down."""

    def __init__(
        self,
        name: str,
        config: BreakerConfig = MLFLOW_BREAKER,
        *,
        clock: Clock = time.monotonic,
        on_transition: Listener | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._clock = clock
        self._on_transition = on_transition  # called under the lock: must not call back
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self._trial_started_at = 0.0

    @property
    def state(self) -> BreakerState:
        """The current state; an OPEN breaker whose recovery time has passed reads HALF_OPEN."""
        with self._lock:
            self._advance()
            return self._state

    @property
    def failure_count(self) -> int:
        """Consecutive failures counted so far (reset by a success)."""
        return self._failures

    def before_call(self) -> None:
        """Ask to make a call: returns if allowed, raises ``CircuitOpenError`` if not.

        In HALF_OPEN exactly one caller gets through (the trial); others are refused
        until the trial is recorded as a success or a failure.
        """
        with self._lock:
            self._advance()
            if self._state is BreakerState.CLOSED:
                return
            if self._state is BreakerState.HALF_OPEN and self._trial_may_start():
                self._trial_in_flight = True
                self._trial_started_at = self._clock()
                return
            raise CircuitOpenError(self.name, self._retry_after())

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._trial_in_flight = False
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            trial_failed = self._state is BreakerState.HALF_OPEN
            self._trial_in_flight = False
            if trial_failed or self._failures >= self.config.failure_threshold:
                self._opened_at = self._clock()
                self._set(BreakerState.OPEN)

    def call(
        self,
        fn: Callable[[], T],
        *,
        is_failure: Callable[[Exception], bool] = lambda exc: True,
    ) -> T:
        """Run ``fn`` through the breaker; exceptions for which ``is_failure`` is False
        (e.g. a 404: the service answered) count as successes and are re-raised."""
        self.before_call()
        try:
            result = fn()
        except Exception as exc:
            if is_failure(exc):
                self.record_failure()
            else:
                self.record_success()
            raise
        self.record_success()
        return result

    def _advance(self) -> None:
        """OPEN → HALF_OPEN once the recovery timeout has elapsed (lock held)."""
        if self._state is BreakerState.OPEN and self._retry_after() <= 0:
            self._set(BreakerState.HALF_OPEN)

    def _trial_may_start(self) -> bool:
        """No trial running — or one that never reported back (its caller was cancelled
        or died) for a whole recovery period: let another try rather than stay stuck."""
        if not self._trial_in_flight:
            return True
        return self._clock() - self._trial_started_at >= self.config.recovery_timeout_s

    def _retry_after(self) -> float:
        if self._state is BreakerState.HALF_OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.config.recovery_timeout_s - self._clock())

    def _set(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        if old is not new and self._on_transition is not None:
            self._on_transition(old, new)
