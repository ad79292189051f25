"""Calls to the hosted fine-tuning API: the official SDK behind the `openai` breaker and retries.

Every call goes through :meth:`HostedAPI.call`: up to ``max_attempts`` tries on what is worth
trying again (429, 5xx, timeouts, dropped connections), waiting ``Retry-After`` when the
provider says so and an exponential backoff with jitter otherwise; each of those failures is
counted by the circuit breaker (the process's ``openai`` breaker unless one is given), which
refuses calls while open. Whatever finally fails leaves as :class:`HostedAPIError` (an
:class:`~tuneloop.errors.ExternalServiceError`) or the breaker's ``CircuitOpenError``.
The SDK's own retries are off, so one policy (and one sleep, injectable) rules.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from tuneloop.errors import ExternalServiceError
from tuneloop.resilience.breaker import CircuitBreaker, CircuitOpenError

if TYPE_CHECKING:
    from openai import OpenAI

T = TypeVar("T")
Sleep = Callable[[float], None]
SERVICE = "openai"
MAX_RETRY_AFTER_S = 120.0


class HostedAPIError(ExternalServiceError):
    """A call the provider refused or that kept failing; ``transient`` if worth retrying."""

    def __init__(self, message: str, *, status_code: int | None, transient: bool) -> None:
        super().__init__(SERVICE, message)
        self.status_code = status_code
        self.transient = transient


def is_transient(exc: BaseException) -> bool:
    """429, 5xx, timeouts and connection failures: the provider may answer next time."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc, openai.APIConnectionError)  # includes APITimeoutError


def retry_after(exc: BaseException) -> float | None:
    """The provider's ``Retry-After`` (seconds) on an error response, if it sent one."""
    response = getattr(exc, "response", None)
    value = None if response is None else response.headers.get("retry-after")
    try:
        return None if value is None else min(MAX_RETRY_AFTER_S, max(0.0, float(value)))
    except ValueError:
        return None


class HostedAPI:
    """The SDK client plus the resilience policy; ``client`` is the ``openai.OpenAI`` object."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        breaker: CircuitBreaker,
        timeout_s: float = 30.0,
        max_attempts: int = 3,
        backoff_s: float = 1.0,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        from openai import OpenAI

        self.client: OpenAI = OpenAI(
            base_url=base_url,
            api_key=api_key or "unset",  # the SDK insists on one; the provider answers 401
            timeout=timeout_s,
            max_retries=0,
        )
        self.breaker = breaker
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.calls = 0  # requests sent (retries included): the orchestration's cost

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one SDK call with retries and the breaker; translate what finally fails."""
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(is_transient),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            return retrying(self._once, fn)
        except CircuitOpenError:
            raise
        except Exception as exc:
            raise _translate(what, exc) from exc

    def _once(self, fn: Callable[[], T]) -> T:
        self.calls += 1
        return self.breaker.call(fn, is_failure=is_transient)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        told = None if exc is None else retry_after(exc)
        if told is not None:
            return told
        base = self.backoff_s * 2 ** (state.attempt_number - 1)
        return base * (0.5 + self.rng.random() / 2)  # jitter: callers do not retry in step


def _translate(what: str, exc: Exception) -> Exception:
    import openai

    if isinstance(exc, openai.APIStatusError):
        message = _error_message(exc.body) or str(exc)
        return HostedAPIError(
            f"{what}: HTTP {exc.status_code}: {message}",
            status_code=exc.status_code,
            transient=is_transient(exc),
        )
    if isinstance(exc, openai.APIConnectionError):
        return HostedAPIError(f"{what}: {exc}", status_code=None, transient=True)
    if isinstance(exc, openai.OpenAIError):
        return HostedAPIError(f"{what}: {exc}", status_code=None, transient=False)
    return exc


def _error_message(body: Any) -> str | None:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return None
