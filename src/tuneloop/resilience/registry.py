"""The process's circuit breakers: one per outside service, shared by every caller, metered.

``/health`` and ``/metrics`` report one state per service, so every caller of a service in
this process must count its failures on the same breaker: the MLflow tracker built by
``tuneloop.tracking.factory``, and the OpenAI-compatible proxy around its upstream calls::

    breaker = process_breaker("openai")
    breaker.call(send)

Each breaker mirrors itself into Prometheus as it changes: its state into
``fine_tuning_{name}_circuit_breaker_state{state}`` on every transition, and each recorded
failure into ``fine_tuning_{name}_failures_total``. Tests call ``reset_process_breakers()``
to start again from fresh, CLOSED breakers.
"""

from __future__ import annotations

import threading
import time
from typing import Literal, get_args

from tuneloop.observability.metrics import count_breaker_failure, set_breaker_state
from tuneloop.resilience.breaker import (
    MLFLOW_BREAKER,
    OPENAI_BREAKER,
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    Clock,
)

BreakerName = Literal["openai", "mlflow"]
BREAKER_NAMES: tuple[BreakerName, ...] = get_args(BreakerName)
CONFIGS: dict[BreakerName, BreakerConfig] = {"openai": OPENAI_BREAKER, "mlflow": MLFLOW_BREAKER}

_breakers: dict[BreakerName, CircuitBreaker] = {}
_lock = threading.Lock()


class MeteredBreaker(CircuitBreaker):
    """A breaker that keeps its Prometheus state gauge and failure counter current."""

    def __init__(
        self, name: BreakerName, config: BreakerConfig, *, clock: Clock = time.monotonic
    ) -> None:
        super().__init__(name, config, clock=clock, on_transition=self._publish)
        set_breaker_state(name, BreakerState.CLOSED)

    def record_failure(self) -> None:
        super().record_failure()
        count_breaker_failure(self.name)

    def _publish(self, old: BreakerState, new: BreakerState) -> None:
        # Runs under the breaker's lock: it only sets a gauge, never calls the breaker.
        set_breaker_state(self.name, new)


def process_breaker(name: BreakerName) -> CircuitBreaker:
    """This process's breaker for ``name``, created (with the documented config) on first use."""
    if name not in CONFIGS:
        raise ValueError(f"no circuit breaker named {name!r}; known: {', '.join(BREAKER_NAMES)}")
    with _lock:
        breaker = _breakers.get(name)
        if breaker is None:
            breaker = _breakers[name] = MeteredBreaker(name, CONFIGS[name])
        return breaker


def breaker_state(name: BreakerName) -> str:
    """The current state of the process breaker ``name``, as /health reports it."""
    return process_breaker(name).state.value


def reset_process_breakers() -> None:
    """Forget every process breaker (tests): the next ``process_breaker`` call makes a fresh,
    CLOSED one. Holders of the old objects keep them; failure counters are not reset."""
    with _lock:
        _breakers.clear()
    for name in BREAKER_NAMES:
        set_breaker_state(name, BreakerState.CLOSED)
