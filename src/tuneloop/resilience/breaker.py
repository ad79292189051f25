"""A circuit breaker: stops calling an outside system whose calls fail too often, then probes it.

It counts calls over a sliding time window (as resilience4j's time-based window does) and
opens on a failure *rate*, not on a run of consecutive failures: a busy service that fails
one call in four stays in use, one that fails most of its calls is spared. States
(``BreakerState``) and transitions::

    CLOSED ──(in the last window_s: >= failure_threshold failures
              and a failure rate >= failure_rate)──▶ OPEN
    OPEN ──(recovery_timeout_s elapsed)──▶ HALF_OPEN     (half_open_calls trials let through)
    HALF_OPEN ──enough trials succeed──▶ CLOSED           (a failure rate below failure_rate)
    HALF_OPEN ──too many trials fail───▶ OPEN             (the recovery clock restarts)

``failure_threshold`` is the minimum number of failures (and ``minimum_calls``, if larger,
of calls) before the rate is judged, so an idle service that fails ``failure_threshold``
calls in a row still opens it (the documented "OpenAI opens after 3 failures, MLflow after
5"), while a busy one opens only when at least ``failure_rate`` of its recent calls failed.
A call that says nothing about the service's health (a 429 with ``Retry-After``:
back-pressure) is recorded with ``record_ignored``: it frees its trial slot, counts neither
way.

Trials that never report back (their callers were cancelled) are given up after another
recovery period, so the breaker cannot stay stuck in HALF_OPEN.

Pure and clock-injectable: no I/O, no sleeping; ``clock`` returns seconds (monotonic).
Thread-safe, so one breaker can guard a client shared by threads. Usage::

    breaker.before_call()                        # raises CircuitOpenError
    try:
        result = fetch()
    except TimeoutError:
        breaker.record_failure()
        raise
    breaker.record_success()

or ``breaker.call(fetch, is_failure=...)``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
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
    failure_threshold: int = 5  # the fewest failures in the window that can open it
    recovery_timeout_s: float = 60.0  # how long it stays OPEN before trials
    failure_rate: float = 0.5  # the share of failed calls in the window that opens it
    window_s: float = 60.0  # the sliding window the rate is measured over
    half_open_calls: int = 1  # trials let through at once in HALF_OPEN
    minimum_calls: int = 0  # calls in the window before the rate is judged; 0: failure_threshold

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if self.recovery_timeout_s < 0:
            raise ValueError("recovery_timeout_s must not be negative")
        if not 0.0 < self.failure_rate <= 1.0:
            raise ValueError("failure_rate must be in (0, 1]")
        if self.window_s <= 0:
            raise ValueError("window_s must be positive")
        if self.half_open_calls < 1:
            raise ValueError("half_open_calls must be at least 1")
        if self.minimum_calls < 0:
            raise ValueError("minimum_calls must not be negative")

    @property
    def trials_to_close(self) -> int:
        """Successful trials that close it: the trials' failure rate stays below the limit."""
        return self.half_open_calls - math.ceil(self.half_open_calls * self.failure_rate) + 1


# The documented operational defaults (API.md): OpenAI opens after 3 failures, 120 s recovery;
# MLflow after 5, 60 s — here the minimum failures of a window in which at least half failed.
MLFLOW_BREAKER = BreakerConfig(failure_threshold=5, recovery_timeout_s=60.0)
OPENAI_BREAKER = BreakerConfig(failure_threshold=3, recovery_timeout_s=120.0)


class CircuitOpenError(ExternalServiceError):
    """The breaker refused the call without trying: the service failed recently."""

    def __init__(self, service: str, retry_after_s: float) -> None:
        super().__init__(service, f"circuit open; next trial in {retry_after_s:.0f} s")
        self.retry_after_s = retry_after_s


class CircuitBreaker:
    """Measures one service's failure rate and fails fast while it is down."""

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
        self._window: deque[list[int]] = deque()  # [second, calls, failures], oldest first
        self._opened_at = 0.0
        self._trials = 0  # trials in flight in HALF_OPEN
        self._trial_started_at = 0.0
        self._trial_ok = 0
        self._trial_failed = 0

    @property
    def state(self) -> BreakerState:
        """The current state; an OPEN breaker whose recovery time has passed reads HALF_OPEN."""
        with self._lock:
            self._advance()
            return self._state

    @property
    def failure_count(self) -> int:
        """Failures counted in the current window."""
        with self._lock:
            return self._counts()[1]

    def snapshot(self) -> dict[str, float | int | str]:
        """State, calls and failures in the window, and seconds until a trial (for /health)."""
        with self._lock:
            self._advance()
            calls, failures = self._counts()
            return {
                "state": self._state.value,
                "calls": calls,
                "failures": failures,
                "retry_after_s": round(self._retry_after(), 3),
            }

    def before_call(self) -> None:
        """Ask to make a call: returns if allowed, raises ``CircuitOpenError`` if not."""
        with self._lock:
            self._advance()
            if self._state is BreakerState.CLOSED:
                return
            if self._state is BreakerState.HALF_OPEN and self._trial_may_start():
                self._trials += 1
                self._trial_started_at = self._clock()
                return
            raise CircuitOpenError(self.name, self._retry_after())

    def record_success(self) -> None:
        with self._lock:
            if self._state is BreakerState.HALF_OPEN:
                self._trials = max(0, self._trials - 1)
                self._trial_ok += 1
                if self._trial_ok >= self.config.trials_to_close:
                    self._window.clear()
                    self._set(BreakerState.CLOSED)
                return
            self._count(failed=False)

    def record_failure(self) -> None:
        with self._lock:
            if self._state is BreakerState.HALF_OPEN:
                self._trials = max(0, self._trials - 1)
                self._trial_failed += 1
                allowed = self.config.half_open_calls - self.config.trials_to_close
                if self._trial_failed > allowed:
                    self._open()
                return
            if self._state is BreakerState.OPEN:
                return  # a call let through before it opened: already judged
            self._count(failed=True)
            calls, failures = self._counts()
            if (
                failures >= self.config.failure_threshold
                and calls >= self.config.minimum_calls
                and failures >= self.config.failure_rate * calls
            ):
                self._open()

    def record_ignored(self) -> None:
        """A call that says nothing about the service's health (back-pressure): frees its
        trial slot, counts neither way."""
        with self._lock:
            if self._state is BreakerState.HALF_OPEN:
                self._trials = max(0, self._trials - 1)

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

    # -- internals (lock held) -----------------------------------------------------------

    def _count(self, *, failed: bool) -> None:
        second = int(self._clock())
        if self._window and self._window[-1][0] == second:
            bucket = self._window[-1]
        else:
            bucket = [second, 0, 0]
            self._window.append(bucket)
        bucket[1] += 1
        bucket[2] += int(failed)

    def _counts(self) -> tuple[int, int]:
        oldest = self._clock() - self.config.window_s
        while self._window and self._window[0][0] + 1 <= oldest:
            self._window.popleft()
        return sum(b[1] for b in self._window), sum(b[2] for b in self._window)

    def _open(self) -> None:
        # The window is kept (failure_count says why it opened) and cleared when it closes.
        self._opened_at = self._clock()
        self._set(BreakerState.OPEN)

    def _advance(self) -> None:
        """OPEN → HALF_OPEN once the recovery timeout has elapsed."""
        if self._state is BreakerState.OPEN and self._retry_after() <= 0:
            self._trials = self._trial_ok = self._trial_failed = 0
            self._set(BreakerState.HALF_OPEN)

    def _trial_may_start(self) -> bool:
        """A free trial slot — or trials that never reported back (their callers were
        cancelled or died) for a whole recovery period: let others try rather than stay stuck."""
        if self._trials < self.config.half_open_calls:
            return True
        if self._clock() - self._trial_started_at >= self.config.recovery_timeout_s:
            self._trials = 0
            return True
        return False

    def _retry_after(self) -> float:
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.config.recovery_timeout_s - self._clock())

    def _set(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        if old is not new and self._on_transition is not None:
            self._on_transition(old, new)
