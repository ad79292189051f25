"""Calls to OpenAI-compatible upstreams (a provider, vLLM): pooled HTTP, timeouts, breakers.

One ``httpx.AsyncClient`` per base URL keeps connections alive between requests. Each
upstream has a circuit breaker (``UpstreamTarget.name``): the ``openai`` section shares the
process's documented ``openai`` breaker (at least 3 failures, half the calls of its window,
120 s recovery), shown in ``/health`` and ``/metrics``; every other upstream gets its own,
configured by ``serving.breaker`` (a failure rate over a sliding window with a minimum of
calls, a few seconds open, a few trial calls), shown in ``/health``'s
``upstream_circuit_breakers`` and ``tuneloop_upstream_circuit_breaker_state{upstream,state}``.
A broken vLLM node does not stop calls to the provider.

A failure is what says the upstream is unwell: no connection, a timeout, a 5xx, or a 2xx
whose body is not a completion (answered to the client as a 502). A 429 is back-pressure:
passed on to the client with its ``Retry-After``, counted neither way. An upstream that
answers another 4xx is up (the breaker counts a success); the proxy passes its error on.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from tuneloop.config import UpstreamBreakerSettings
from tuneloop.errors import ExternalServiceError
from tuneloop.observability.metrics import count_upstream_failure, set_upstream_breaker_state
from tuneloop.resilience.breaker import BreakerConfig, BreakerState, CircuitBreaker
from tuneloop.resilience.registry import process_breaker
from tuneloop.serving.targets import UpstreamTarget


@dataclass(frozen=True)
class Reply:
    """A whole (non-streamed) answer: the upstream's status and JSON body."""

    status: int
    body: dict[str, Any]
    retry_after: str | None = None  # a 429's Retry-After, passed on to the client


class UpstreamUnavailableError(ExternalServiceError):
    """No answer: refused connection, timeout, or the breaker is open."""


BACK_PRESSURE = 429


class UpstreamClient:
    def __init__(
        self,
        *,
        breaker_config: BreakerConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._transport = transport  # tests may pass an ASGI transport
        self._breaker_config = breaker_config or UpstreamBreakerSettings().config()
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def breaker(self, name: str) -> CircuitBreaker:
        if name == "openai":
            return process_breaker("openai")
        with self._lock:
            if name not in self._breakers:
                self._breakers[name] = UpstreamBreaker(name, self._breaker_config)
            return self._breakers[name]

    def breaker_snapshots(self) -> dict[str, dict[str, float | int | str]]:
        """Every upstream breaker made so far (not ``openai``: /health shows it already)."""
        with self._lock:
            breakers = dict(self._breakers)
        return {name: breaker.snapshot() for name, breaker in sorted(breakers.items())}

    def _client(self, target: UpstreamTarget) -> httpx.AsyncClient:
        base = target.base_url.rstrip("/")
        client = self._clients.get(base)
        if client is None:
            client = httpx.AsyncClient(
                base_url=base,
                transport=self._transport,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )
            self._clients[base] = client
        return client

    async def complete(self, target: UpstreamTarget, body: dict[str, Any]) -> Reply:
        """POST ``/chat/completions`` and read the whole answer."""
        breaker = self.breaker(target.name)
        breaker.before_call()
        try:
            response = await self._client(target).post(
                "/chat/completions",
                json=body,
                headers=target.headers,
                timeout=target.timeout_seconds,
            )
        except httpx.HTTPError as exc:
            breaker.record_failure()
            raise _unavailable(target, exc) from exc
        body = _json_body(response.content, response.status_code)
        if response.status_code < 300 and not _is_completion(body):
            breaker.record_failure()
            message = f"{target.name} answered {response.status_code} without a completion"
            return Reply(502, {"error": {"message": message, "type": "bad_upstream_response"}})
        _record(breaker, response.status_code)
        return Reply(response.status_code, body, _retry_after(response))

    async def open_stream(self, target: UpstreamTarget, body: dict[str, Any]) -> Stream:
        """POST a streaming ``/chat/completions``; the answer's status is known on return."""
        breaker = self.breaker(target.name)
        breaker.before_call()
        client = self._client(target)
        request = client.build_request(
            "POST",
            "/chat/completions",
            json=body,
            headers=target.headers,
            timeout=target.timeout_seconds,
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            breaker.record_failure()
            raise _unavailable(target, exc) from exc
        if response.status_code >= 400:
            try:
                content = await response.aread()
            except httpx.HTTPError as exc:  # the error body itself broke off
                breaker.record_failure()
                raise _unavailable(target, exc) from exc
            finally:
                await response.aclose()
            _record(breaker, response.status_code)
            return Stream(response.status_code, _json_body(content, response.status_code), None)
        return Stream(response.status_code, None, UpstreamLines(response, breaker))

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


@dataclass
class Stream:
    """A streamed answer: ``lines`` when the upstream said 2xx, else its error ``body``."""

    status: int
    body: dict[str, Any] | None
    lines: UpstreamLines | None


class UpstreamLines:
    """The upstream's SSE lines; the breaker learns how the stream ended, once.

    A stream the reader closes (``aclose``: read to its end, or the client went away)
    counts as a success; one that broke off, or that the reader found bad (``fail``: an
    error chunk, a malformed line, an end without a finished answer), as a failure.
    ``aclose`` always closes the upstream response, however the reading stopped.
    """

    def __init__(self, response: httpx.Response, breaker: CircuitBreaker) -> None:
        self._response = response
        self._breaker = breaker
        self._settled = False

    async def __aiter__(self) -> AsyncIterator[str]:
        try:
            async for line in self._response.aiter_lines():
                yield line
        except httpx.HTTPError as exc:
            self._settle(ok=False)
            raise UpstreamUnavailableError("upstream", f"the stream broke off: {exc}") from exc
        finally:
            await self._response.aclose()

    def fail(self) -> None:
        self._settle(ok=False)

    async def aclose(self) -> None:
        await self._response.aclose()
        self._settle(ok=True)

    def _settle(self, *, ok: bool) -> None:
        if self._settled:
            return
        self._settled = True
        if ok:
            self._breaker.record_success()
        else:
            self._breaker.record_failure()


class UpstreamBreaker(CircuitBreaker):
    """A serving upstream's breaker, mirrored into the labelled Prometheus gauge and counter."""

    def __init__(self, name: str, config: BreakerConfig) -> None:
        super().__init__(name, config, on_transition=self._publish)
        set_upstream_breaker_state(name, BreakerState.CLOSED)

    def record_failure(self) -> None:
        super().record_failure()
        count_upstream_failure(self.name)

    def _publish(self, old: BreakerState, new: BreakerState) -> None:
        set_upstream_breaker_state(self.name, new)


def _record(breaker: CircuitBreaker, status: int) -> None:
    if status == BACK_PRESSURE:
        breaker.record_ignored()
    elif status >= 500:
        breaker.record_failure()
    else:
        breaker.record_success()


def _is_completion(body: dict[str, Any]) -> bool:
    """A chat completion: a list of choices, each with a message (not an error object)."""
    choices = body.get("choices")
    return (
        "error" not in body
        and isinstance(choices, list)
        and bool(choices)
        and all(isinstance(c, dict) and isinstance(c.get("message"), dict) for c in choices)
    )


def _retry_after(response: httpx.Response) -> str | None:
    value = response.headers.get("retry-after")
    return value if value is not None and response.status_code == BACK_PRESSURE else None


def _unavailable(target: UpstreamTarget, exc: httpx.HTTPError) -> UpstreamUnavailableError:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "could not be reached"
    # The URL, not the exception text: it may quote request headers.
    return UpstreamUnavailableError(target.name, f"{target.base_url} {kind}")


def _json_body(content: bytes, status: int) -> dict[str, Any]:
    try:
        parsed = orjson.loads(content)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        return parsed
    text = content[:500].decode("utf-8", "replace")
    return {"error": {"message": f"upstream answered {status}: {text}", "type": "upstream"}}
