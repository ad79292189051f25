"""The in-process model server for locally trained versions: base + LoRA adapter, batched.

::

    server = LocalModelServer(settings.serving.local)
    await server.start(warm=[LocalModel("/path/to/base", "runs/ft-.../train/adapter")])
    generation = await server.generate(model, [{"role": "user", "content": "Write a hook"}])
    await server.aclose()

One worker thread owns every torch object, so generation never blocks the event loop and
PEFT's active-adapter state is never switched under a running batch. The worker takes up
to ``max_batch_size`` queued requests, waiting at most ``batch_wait_ms`` for company,
groups them by model and sampling, and runs one left-padded ``generate`` per group
(:func:`tuneloop.train.generate.generate_chats`); results go back to each caller's future.
What is loaded, and the adapter cache, live in :mod:`tuneloop.serving.loaded`.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Hashable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneloop.config import LocalServingSettings
from tuneloop.errors import (
    ExternalServiceError,
    InvalidInputError,
    InvalidStateError,
    TuneloopError,
)
from tuneloop.serving.loaded import LoadedBase, LoadedModels, LocalModel
from tuneloop.train.generate import Chat, Generation, generate_chats

WARMUP_CHAT: Chat = [{"role": "user", "content": "Hello"}]
SERVICE = "local model server"

__all__ = ["LocalModel", "LocalModelServer"]


@dataclass(eq=False)
class _Request:
    model: LocalModel
    chat: Chat
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Generation] = field(repr=False)

    def group(self) -> Hashable:
        """Requests with equal keys can share one ``generate`` call."""
        if self.temperature <= 0:
            return (self.model, "greedy")
        if self.seed is None:
            return (self.model, self.temperature, self.top_p)
        return (self.model, id(self))  # a seeded sample reproduces only alone

    def settle(self, outcome: Generation | BaseException) -> None:
        """Hand ``outcome`` to the caller's loop (callable from any thread)."""

        def deliver() -> None:
            if self.future.done():  # the caller gave up (cancelled, timed out)
                return
            if isinstance(outcome, BaseException):
                self.future.set_exception(outcome)
            else:
                self.future.set_result(outcome)

        with suppress(RuntimeError):  # the caller's loop is closed: nobody is waiting
            self.loop.call_soon_threadsafe(deliver)


_STOP = object()


class LocalModelServer:
    """Serves base models and LoRA adapters from this process. See the module docstring."""

    def __init__(self, settings: LocalServingSettings, *, tiny_dir: Path | None = None) -> None:
        self.settings = settings
        self.tiny_dir = tiny_dir
        self._queue: queue.Queue[Any] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._closing = threading.Event()
        self._ready = False
        self.models = LoadedModels(settings, tiny_dir=tiny_dir)
        self._counts = dict.fromkeys(("requests", "failed", "batches", "batched_requests"), 0)

    @property
    def ready(self) -> bool:
        """True once :meth:`start` has warmed its models; at once when warm-up is off."""
        if self._closing.is_set():
            return False
        return self._ready or not self.settings.warmup

    async def start(self, warm: Sequence[LocalModel] = ()) -> None:
        """Load each of ``warm`` and generate one token with it, then become ready."""
        self._ensure_worker()
        if self.settings.warmup and warm:
            await asyncio.gather(*(self.generate(m, WARMUP_CHAT, max_tokens=1) for m in warm))
        self._ready = True

    async def generate(
        self,
        model: LocalModel,
        messages: list[dict[str, str]],
        *,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> Generation:
        """Greedy when ``temperature`` is 0; ``max_tokens`` is capped by the settings."""
        if max_tokens is not None and max_tokens < 1:
            raise InvalidInputError(f"max_tokens must be at least 1, not {max_tokens}")
        self._ensure_worker()
        loop = asyncio.get_running_loop()
        cap = self.settings.max_new_tokens
        request = _Request(
            model=model,
            chat=messages,
            max_new_tokens=min(max_tokens or cap, cap),
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            loop=loop,
            future=loop.create_future(),
        )
        self._counts["requests"] += 1
        self._queue.put(request)
        return await request.future

    def stats(self) -> dict[str, int | float]:
        """Counters since the start (warm-up included), and what is loaded now.

        ``requests`` counts those received, ``failed`` those answered with an error, and
        ``batches`` the ``generate`` calls, of ``mean_batch_size`` requests on average.
        """
        counts = dict(self._counts)
        batches = counts.pop("batches")
        generated = counts.pop("batched_requests")
        return (
            counts
            | self.models.stats()
            | {
                "batches": batches,
                "mean_batch_size": round(generated / batches, 3) if batches else 0.0,
                "queued": self._queue.qsize(),
            }
        )

    async def aclose(self) -> None:
        """Stop the worker (a running batch stops at its next token); fail what is pending."""
        self._ready = False
        if self._closing.is_set():
            return
        self._closing.set()
        self._queue.put(_STOP)
        if self._worker is not None:
            await asyncio.to_thread(self._worker.join)
        self._fail_queued()

    # --- the worker thread: everything below runs there ---------------------------------

    def _ensure_worker(self) -> None:
        if self._closing.is_set():
            raise InvalidStateError(f"the {SERVICE} is closed")
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="local-model-server")
            self._worker.daemon = True  # a server nobody closed must not hang interpreter exit
            self._worker.start()

    def _work(self) -> None:
        while not self._closing.is_set():
            batch = self._collect()
            groups: dict[Hashable, list[_Request]] = {}
            for request in batch:
                if not request.future.done():  # skip callers that gave up while queued
                    groups.setdefault(request.group(), []).append(request)
            for group in groups.values():
                if self._closing.is_set():
                    self._fail(group, self._closed_error())
                else:
                    self._serve(group)
        self._fail_queued()

    def _collect(self) -> list[_Request]:
        """The next requests: block for one, then wait ``batch_wait_ms`` for more."""
        first = self._queue.get()
        if first is _STOP:
            return []
        batch: list[_Request] = [first]
        deadline = time.monotonic() + self.settings.batch_wait_ms / 1000
        while len(batch) < self.settings.max_batch_size:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is _STOP:
                break  # _closing is set: the caller fails the batch
            batch.append(item)
        return batch

    def _serve(self, group: list[_Request]) -> None:
        """Load the group's model, then generate; a generation failure is isolated per request."""
        try:
            base, adapter = self.models.load(group[0].model)
        except Exception as exc:
            self._fail(group, _translate(exc))
            return
        try:
            generations = self._generate(base, adapter, group)
        except Exception as exc:
            if len(group) == 1:
                self._fail(group, _translate(exc))
            else:  # retry one by one, so a bad request fails alone
                for request in group:
                    self._serve([request])
            return
        if self._closing.is_set():  # stopped early: the texts are cut short
            self._fail(group, self._closed_error())
            return
        for request, generation in zip(group, generations, strict=True):
            request.settle(generation)

    def _generate(
        self, base: LoadedBase, adapter: str | None, group: list[_Request]
    ) -> list[Generation]:
        from tuneloop.train.runtime import torch_threads

        model, context = base.ready_for(adapter)
        first = group[0]
        with torch_threads(self.settings.num_threads), context:
            generations = generate_chats(
                model,
                base.tokenizer,
                [r.chat for r in group],
                device=self.models.device(),
                max_new_tokens=[r.max_new_tokens for r in group],
                temperature=first.temperature,
                top_p=first.top_p,
                seed=first.seed,
                should_stop=self._closing.is_set,
            )
        self._counts["batches"] += 1
        self._counts["batched_requests"] += len(group)
        return generations

    def _closed_error(self) -> ExternalServiceError:
        return ExternalServiceError(SERVICE, "closed before the request finished")

    def _fail_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                self._fail([item], self._closed_error())

    def _fail(self, group: list[_Request], error: BaseException) -> None:
        self._counts["failed"] += len(group)
        for request in group:
            request.settle(error)


def _translate(exc: Exception) -> Exception:
    """Tuneloop errors as they are; anything from torch or transformers as a service error."""
    if isinstance(exc, TuneloopError):
        return exc
    return ExternalServiceError(SERVICE, f"generation failed: {type(exc).__name__}: {exc}")
