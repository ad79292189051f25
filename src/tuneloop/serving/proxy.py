"""The OpenAI-compatible proxy: route a chat request, call the chosen model, record what happened.

Per request (``POST /v1/chat/completions``):

1. **decide**: a generation id (``gen-…``); the unit is the request's ``user`` (OpenAI's
   end-user field), else the ``X-Tuneloop-Unit`` header, else the generation id (no
   stickiness); ``model="auto"`` routes the unit (holdout > experiment > rollout > champion, see
   ``rollout.routing``), ``model="MODEL@VERSION"`` pins a version; then where that version
   is served (``serving.targets``);
2. **call** the upstream or the local model server, streaming or not;
3. **record** one ``generation`` event (tokens, latency, cost, error) labelled
   ``MODEL@VERSION`` — plus the unit's ``exposure`` when an experiment routed it — through the
   background ``EventRecorder``. The response carries ``X-Tuneloop-Generation-Id``; engagement
   events sent later with that ``generation_id`` attach to the generation.

A failed call (no answer, 5xx, any upstream error) is recorded with ``error: true``: that is
what the rollout's error-rate trigger counts.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import orjson
from cachetools import LRUCache, TTLCache
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from tuneloop.config import Settings
from tuneloop.domain.clock import Clock
from tuneloop.errors import InvalidInputError, NotFoundError, Problem
from tuneloop.observability.metrics import count_upstream_fallback
from tuneloop.resilience.breaker import CircuitOpenError
from tuneloop.rollout.checks import model_label
from tuneloop.rollout.routing import Route
from tuneloop.serving.chat import AUTO, ChatCompletionRequest, chunks, completion
from tuneloop.serving.local_serving import LocalServing
from tuneloop.serving.recorder import EventRecorder
from tuneloop.serving.routes import RouteCache
from tuneloop.serving.targets import (
    LocalTarget,
    Target,
    UpstreamTarget,
    configured_upstream,
    target_for,
)
from tuneloop.serving.upstream import (
    Reply,
    UpstreamClient,
    UpstreamLines,
    UpstreamUnavailableError,
)
from tuneloop.store.models_registry import get_model_version
from tuneloop.store.pipeline_models import ModelVersion

log = logging.getLogger(__name__)

GENERATION_HEADER = "X-Tuneloop-Generation-Id"
MODEL_HEADER = "X-Tuneloop-Model"
SOURCE_HEADER = "X-Tuneloop-Route-Source"
UNIT_HEADER = "X-Tuneloop-Unit"
EXPERIMENT_HEADER = "X-Tuneloop-Experiment"  # only when an experiment routed the call
ARM_HEADER = "X-Tuneloop-Arm"
VERSION_CACHE_SIZE = 4096  # registry records kept per process


@dataclass(frozen=True)
class Decision:
    tenant_id: str
    generation_id: str
    unit_id: str
    route: Route
    target: Target

    def headers(self) -> dict[str, str]:
        headers = {
            GENERATION_HEADER: self.generation_id,
            MODEL_HEADER: self.route.model,
            SOURCE_HEADER: self.route.source,
        }
        if self.route.source == "experiment" and self.route.experiment_key and self.route.arm:
            headers |= {EXPERIMENT_HEADER: self.route.experiment_key, ARM_HEADER: self.route.arm}
        return headers


@dataclass(frozen=True)
class Outcome:
    """What the generation cost, for its event."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: bool = False

    @property
    def tokens(self) -> int | None:
        if self.prompt_tokens is None and self.completion_tokens is None:
            return None
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


@dataclass
class Opened:
    """A streamed answer: SSE bytes to send, or (``body``) the error the call ended in."""

    status: int
    body: dict[str, Any] | None = None
    events: AsyncIterator[bytes] | None = None


class ChatProxy:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        routes: RouteCache,
        upstream: UpstreamClient,
        local: LocalServing,
        recorder: EventRecorder,
        clock: Clock,
    ) -> None:
        """``clock`` stamps the generation events: the app's, so a scaled trial's rollout
        windows (on the same clock) see the traffic it served."""
        self.settings = settings
        self.clock = clock
        self.engine = engine
        self.routes = routes
        self.upstream = upstream
        self.local = local
        self.recorder = recorder
        # Bounded: a long-lived server sees every version ever pinned by any tenant.
        self._versions: LRUCache[tuple[str, str, str], ModelVersion] = LRUCache(VERSION_CACHE_SIZE)
        # Versions not registered (a provider's model in an experiment arm, an upstream-only
        # pin) are remembered briefly too, or each of their calls would cost a query; one
        # registered meanwhile is found within route_cache_seconds, like a deploy.
        self._unregistered: TTLCache[tuple[str, str, str], bool] = TTLCache(
            VERSION_CACHE_SIZE, ttl=max(settings.serving.route_cache_seconds, 0.001)
        )
        self._versions_lock = threading.Lock()  # decide() runs in the threadpool

    # -- 1. decide -------------------------------------------------------------------------

    def decide(
        self, tenant_id: str, request: ChatCompletionRequest, unit_header: str | None
    ) -> Decision:
        """Route the request (reads the database when the caches are cold)."""
        generation_id = f"gen-{uuid.uuid4().hex}"
        unit_id = request.user or unit_header or generation_id
        if request.model == AUTO:
            route = self.routes.route(tenant_id, unit_id)
            row = self.version_record(tenant_id, route.model_id, route.version)
        else:
            route, row = self._pinned(tenant_id, request.model)
        target = target_for(self.settings, tenant_id, route.model_id, route.version, row)
        if isinstance(target, LocalTarget) and request.n > 1:
            raise InvalidInputError(
                "the local model server answers one choice per request",
                [Problem("body.n", "must be 1 for a locally served model")],
            )
        return Decision(tenant_id, generation_id, unit_id, route, target)

    def _pinned(self, tenant_id: str, name: str) -> tuple[Route, ModelVersion | None]:
        model_id, at, version = name.rpartition("@")
        if not at or not model_id or not version:
            raise NotFoundError(
                f"model {name!r} not found: ask for 'auto' (tuneloop routes) or a "
                "MODEL@VERSION listed by GET /v1/models"
            )
        row = self.version_record(tenant_id, model_id, version)
        if row is None and not configured_upstream(
            self.settings, tenant_id, model_id, version, registered=False
        ):
            raise NotFoundError(f"model {name!r} not found: GET /v1/models lists them")
        return Route(model_label(model_id, version), model_id, version, "pinned"), row

    def version_record(self, tenant_id: str, model_id: str, version: str) -> ModelVersion | None:
        """The registry record (cached: where a version is served does not change), or None
        for a version tuneloop did not register."""
        key = (tenant_id, model_id, version)
        with self._versions_lock:
            found = self._versions.get(key)
            if found is None and key in self._unregistered:
                return None
        if found is None:
            try:
                found = get_model_version(self.engine, tenant_id, model_id, version)
            except NotFoundError:
                with self._versions_lock:
                    self._unregistered[key] = True
                return None
            with self._versions_lock:
                self._versions[key] = found
        return found

    # -- 2. call, 3. record ----------------------------------------------------------------

    async def complete(self, decision: Decision, request: ChatCompletionRequest) -> Reply:
        """Call the model; while its upstream's breaker is open, its ``fallback`` (when one
        is configured) answers instead, recorded under the same generation id."""
        target = decision.target
        may_fall_back = isinstance(target, UpstreamTarget) and bool(target.fallback)
        started = time.perf_counter()
        try:
            return await self._complete(decision, request, record_refusal=not may_fall_back)
        except CircuitOpenError:
            if not may_fall_back:
                raise
            fallback = await run_in_threadpool(self.fallback_for, decision)
            if fallback is None:
                self._record(decision, Outcome(error=True), started)
                raise
        count_upstream_fallback(target.name)  # type: ignore[union-attr]
        return await self._complete(fallback, request, record_refusal=True)

    def fallback_for(self, decision: Decision) -> Decision | None:
        """The decision to serve instead while the target's breaker is open (None: none)."""
        target = decision.target
        if not isinstance(target, UpstreamTarget) or not target.fallback:
            return None
        model_id, _, version = target.fallback.rpartition("@")
        if not model_id or not version:
            return None
        row = self.version_record(decision.tenant_id, model_id, version)
        served = target_for(self.settings, decision.tenant_id, model_id, version, row)
        if isinstance(served, UpstreamTarget) and served.name == target.name:
            return None  # the same upstream: no help
        route = Route(model_label(model_id, version), model_id, version, "fallback")
        return Decision(decision.tenant_id, decision.generation_id, decision.unit_id, route, served)

    async def _complete(
        self, decision: Decision, request: ChatCompletionRequest, *, record_refusal: bool
    ) -> Reply:
        started = time.perf_counter()
        outcome: Outcome | None = Outcome(error=True)
        try:
            if isinstance(decision.target, LocalTarget):
                generation = await self.local.generate(decision.target.model, request)
                body = completion(
                    generation,
                    completion_id=f"chatcmpl-{decision.generation_id[4:]}",
                    model=decision.route.model,
                )
                reply = Reply(200, body)
            else:
                body = request.upstream_body(decision.target.model)
                reply = await self.upstream.complete(decision.target, body)
                if reply.status < 400:
                    reply.body["model"] = decision.route.model
            outcome = _outcome(reply.body.get("usage"), error=reply.status >= 400)
            return reply
        except CircuitOpenError:
            if not record_refusal:  # the fallback's call is this generation's event
                outcome = None
            raise
        finally:
            if outcome is not None:
                self._record(decision, outcome, started)

    async def open_stream(self, decision: Decision, request: ChatCompletionRequest) -> Opened:
        started = time.perf_counter()
        if isinstance(decision.target, LocalTarget):
            try:
                generation = await self.local.generate(decision.target.model, request)
            except Exception:
                self._record(decision, Outcome(error=True), started)
                raise
            pieces = chunks(
                generation,
                completion_id=f"chatcmpl-{decision.generation_id[4:]}",
                model=decision.route.model,
                include_usage=request.wants_usage,
            )
            outcome = Outcome(generation.prompt_tokens, generation.completion_tokens)
            return Opened(200, events=self._local_events(decision, pieces, outcome, started))
        try:
            stream = await self.upstream.open_stream(
                decision.target, request.upstream_body(decision.target.model)
            )
        except Exception:
            self._record(decision, Outcome(error=True), started)
            raise
        if stream.lines is None:
            self._record(decision, Outcome(error=True), started)
            return Opened(stream.status, body=stream.body)
        return Opened(stream.status, events=self._relay(decision, request, stream.lines, started))

    async def _local_events(
        self, decision: Decision, pieces: Any, outcome: Outcome, started: float
    ) -> AsyncIterator[bytes]:
        recorded = False
        try:
            for piece in pieces:
                yield _sse(piece)
            # Recorded before the client sees the end: whoever reads the events after the
            # stream finds this one queued (a client may also just go away mid-stream).
            self._record(decision, outcome, started)
            recorded = True
            yield b"data: [DONE]\n\n"
        finally:
            if not recorded:
                self._record(decision, outcome, started)

    async def _relay(
        self,
        decision: Decision,
        request: ChatCompletionRequest,
        lines: UpstreamLines,
        started: float,
    ) -> AsyncIterator[bytes]:
        """The upstream's chunks, relabelled with the routed model; its usage chunk is kept
        for the event and passed on only if the client asked for it.

        The event is an error when the upstream failed (broke off, sent an error chunk or a
        malformed line, ended without finishing); not when the client left early, which
        says nothing about the model (the local server's streams count it the same way).
        """
        usage: dict[str, Any] | None = None
        error, done, finished, recorded = True, False, False, False
        try:
            async for line in lines:
                if not line.startswith("data:"):
                    continue  # blank separators and SSE comments
                data = line[5:].strip()
                if data == "[DONE]":
                    error, done = False, True
                    # Recorded before the client sees the end (as for local streams).
                    self._record(decision, _outcome(usage, error=False), started)
                    recorded = True
                    yield b"data: [DONE]\n\n"
                    continue
                try:
                    chunk = orjson.loads(data)
                except orjson.JSONDecodeError:
                    lines.fail()
                    yield _sse(_MALFORMED)
                    break
                if not isinstance(chunk, dict):
                    continue
                if chunk.get("error"):
                    lines.fail()
                    yield _sse(chunk)
                    break
                finished = finished or _finishes(chunk)
                if chunk.get("usage"):
                    usage = chunk["usage"]
                    if not chunk.get("choices") and not request.wants_usage:
                        continue
                    if not request.wants_usage:
                        chunk.pop("usage")
                chunk["model"] = decision.route.model
                yield _sse(chunk)
            else:
                if not done and finished:
                    # Some servers end a complete answer without the [DONE] sentinel: the
                    # answer is whole (a choice said why it stopped), not an error.
                    error = False
                    self._record(decision, _outcome(usage, error=False), started)
                    recorded = True
                    yield b"data: [DONE]\n\n"
                elif not done:  # cut short, or a 2xx that was no event stream: upstream's fault
                    lines.fail()
                    # Recorded before the client sees the error (it may leave at once).
                    self._record(decision, _outcome(usage, error=True), started)
                    recorded = True
                    yield _sse(_INCOMPLETE)
        except UpstreamUnavailableError as exc:
            yield _sse({"error": {"message": str(exc), "type": "upstream_unavailable"}})
        except (GeneratorExit, asyncio.CancelledError):
            error = False  # the client went away: no fault of the model's
            raise
        finally:
            # Shielded: after a client's disconnect this runs inside a cancelled scope.
            with anyio.CancelScope(shield=True):
                await lines.aclose()
            if not recorded:
                self._record(decision, _outcome(usage, error=error), started)

    def _record(self, decision: Decision, outcome: Outcome, started: float) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        self.recorder.record(
            decision.tenant_id,
            generation_events(decision, outcome, latency_ms, now=self.clock.now()),
        )


_MALFORMED = {"error": {"message": "the upstream sent a malformed event", "type": "upstream"}}
_INCOMPLETE = {"error": {"message": "the upstream ended the stream early", "type": "upstream"}}


def _finishes(chunk: dict[str, Any]) -> bool:
    """Whether a stream chunk ends a choice (its ``finish_reason`` is set)."""
    choices = chunk.get("choices")
    return isinstance(choices, list) and any(
        isinstance(c, dict) and c.get("finish_reason") for c in choices
    )


def generation_events(
    decision: Decision, outcome: Outcome, latency_ms: float, *, now: datetime
) -> list[dict[str, Any]]:
    """The ``generation`` event of one call, and the unit's exposure when an experiment
    routed it (one per unit and experiment: later ones are duplicates, ignored)."""
    route = decision.route
    cost = None
    target = decision.target
    if isinstance(target, UpstreamTarget | LocalTarget) and outcome.prompt_tokens is not None:
        # None when the target's prices are unset: "not measured", never a cost of 0.0.
        cost = target.cost(outcome.prompt_tokens, outcome.completion_tokens or 0)
    experiment = (
        {"experiment_key": route.experiment_key, "arm": route.arm}
        if route.source == "experiment"
        else {}
    )
    events = [
        {
            "idempotency_key": f"generation:{decision.generation_id}",
            "kind": "generation",
            "unit_id": decision.unit_id,
            "model_id": route.model,
            "generation_id": decision.generation_id,
            "tokens": outcome.tokens,
            "cost": cost,
            "latency_ms": latency_ms,
            "error": outcome.error,
            "ts": now,
            **experiment,
        }
    ]
    if experiment:
        events.append(
            {
                "idempotency_key": _key("exposure", route.experiment_key, decision.unit_id),
                "kind": "exposure",
                "unit_id": decision.unit_id,
                "model_id": route.model,
                "ts": now,
                **experiment,
            }
        )
    return events


def _key(*parts: str | None) -> str:
    """An idempotency key from ``parts``, hashed when it would pass the 128-character limit."""
    key = ":".join(str(part) for part in parts)
    return key if len(key) <= 128 else f"{parts[0]}:{hashlib.sha256(key.encode()).hexdigest()}"


def _outcome(usage: Any, *, error: bool) -> Outcome:
    if not isinstance(usage, dict):
        return Outcome(error=error)
    prompt, completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return Outcome(
        prompt if isinstance(prompt, int) else None,
        completion_tokens if isinstance(completion_tokens, int) else None,
        error,
    )


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"
