"""The one gate every MLflow call passes: circuit breaker, retries, error translation.

``MlflowGuard.call(operation, fn)``:

1. asks the breaker (``CircuitOpenError`` at once while MLflow is known to be down);
2. runs ``fn`` with tenacity: up to ``RetryPolicy.attempts`` tries, exponential backoff,
   retrying only transient errors (see ``translate.is_transient``);
3. records one breaker failure if it still failed transiently (``TrackingUnavailableError``),
   or one success otherwise — an MLflow that answers "not found" is up;
4. re-raises anything else as a tuneloop error, chained ``from`` the MLflow exception.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from tuneloop.errors import TuneloopError
from tuneloop.resilience.breaker import MLFLOW_BREAKER, CircuitBreaker
from tuneloop.tracking.translate import is_transient, translate

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: waits ``initial_wait_s``, then doubles, capped at ``max_wait_s``."""

    attempts: int = 3
    initial_wait_s: float = 0.5
    max_wait_s: float = 8.0


class MlflowGuard:
    def __init__(
        self,
        breaker: CircuitBreaker | None = None,
        retry: RetryPolicy = RetryPolicy(),
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.breaker = breaker or CircuitBreaker("mlflow", MLFLOW_BREAKER)
        self.retry = retry
        self._sleep = sleep

    def call(self, operation: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (some MLflow calls) as ``operation``; see the module docstring."""
        self.breaker.before_call()
        try:
            result = self._retrying()(fn)
        except TuneloopError:  # raised by our own code inside fn: MLflow did answer
            self.breaker.record_success()
            raise
        except Exception as exc:
            if is_transient(exc):
                self.breaker.record_failure()
                error = translate(exc, f"{operation} (after {self.retry.attempts} attempts)")
                log.warning("%s", error)
                raise error from exc
            self.breaker.record_success()
            raise translate(exc, operation) from exc
        self.breaker.record_success()
        return result

    def _retrying(self) -> Retrying:
        policy = self.retry
        return Retrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait_exponential(multiplier=policy.initial_wait_s, max=policy.max_wait_s),
            retry=retry_if_exception(is_transient),
            sleep=self._sleep,
            reraise=True,
        )
