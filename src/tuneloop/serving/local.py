"""The in-process model server for locally trained versions: base + LoRA adapter, batched.

::

    server = LocalModelServer(settings.serving.local, tiny_dir=workspace / "models" / "tiny")
    await server.start(warm=[LocalModel("tiny", "runs/ft-.../train/adapter")])
    generation = await server.generate(model, [{"role": "user", "content": "Write a hook"}])
    await server.aclose()

One worker thread owns every torch object, so generation never blocks the event loop and
PEFT's active-adapter state is never switched under a running batch. The worker takes up
to ``max_batch_size`` queued requests, waiting at most ``batch_wait_ms`` for company,
groups them by model and sampling, and runs one left-padded ``generate`` per group
(:func:`tuneloop.train.generate.generate_chats`); results go back to each caller's future.

Memory: a base is loaded once per process. Adapters attach to one ``PeftModel`` per base as
named adapters (``load_adapter`` / ``set_adapter``), not merged copies, so a large base is
never duplicated; the bare base is served inside ``disable_adapter()``. At most
``adapter_cache_size`` adapters stay attached (LRU over all bases, removed with
``delete_adapter``; the last one of a base with ``unload``, which gives the plain model back).
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneloop.config import LocalServingSettings
from tuneloop.errors import (
    ConfigurationError,
    ExternalServiceError,
    InvalidInputError,
    InvalidStateError,
    TuneloopError,
)
from tuneloop.train.generate import Chat, Generation, adapter_base, generate_chats
from tuneloop.train.tiny import TINY, is_tiny_base

WARMUP_CHAT: Chat = [{"role": "user", "content": "Hello"}]
SERVICE = "local model server"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")  # what PEFT saves


@dataclass(frozen=True)
class LocalModel:
    base_model: str  # as stored in model_versions.base_model: "tiny", a hub id, or a path
    adapter_path: str | None = None  # a saved PEFT adapter directory; None serves the base


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


@dataclass
class _Base:
    """One loaded base model, its tokenizer, and the PeftModel once an adapter is attached."""

    model: Any
    tokenizer: Any
    peft: Any = None
    adapters: dict[str, str] = field(default_factory=dict)  # adapter path -> adapter name


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
        self._bases: dict[str, _Base] = {}
        self._lru: OrderedDict[tuple[str, str], None] = OrderedDict()  # (base, adapter path)
        self._names = itertools.count(1)
        self._device: str | None = None
        self._counts = dict.fromkeys(
            (
                "requests",
                "failed",
                "batches",
                "batched_requests",
                "adapter_hits",
                "adapter_misses",
                "adapter_evictions",
            ),
            0,
        )

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
        return counts | {
            "batches": batches,
            "mean_batch_size": round(generated / batches, 3) if batches else 0.0,
            "loaded_bases": len(self._bases),
            "loaded_adapters": len(self._lru),
            "queued": self._queue.qsize(),
        }

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
            base, adapter = self._load(group[0].model)
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
        self, base: _Base, adapter: str | None, group: list[_Request]
    ) -> list[Generation]:
        from tuneloop.train.runtime import torch_threads

        model: Any = base.model if base.peft is None else base.peft
        context: Any = nullcontext()
        if adapter is not None:
            base.peft.set_adapter(adapter, inference_mode=True)
        elif base.peft is not None:  # the model holds LoRA layers now: switch them off
            context = base.peft.disable_adapter()
        first = group[0]
        with torch_threads(self.settings.num_threads), context:
            generations = generate_chats(
                model,
                base.tokenizer,
                [r.chat for r in group],
                device=self._pick_device(),
                max_new_tokens=[r.max_new_tokens for r in group],
                temperature=first.temperature,
                top_p=first.top_p,
                seed=first.seed,
                should_stop=self._closing.is_set,
            )
        self._counts["batches"] += 1
        self._counts["batched_requests"] += len(group)
        return generations

    def _load(self, model: LocalModel) -> tuple[_Base, str | None]:
        """The loaded base of ``model`` and the name of its attached adapter (None: bare)."""
        key = self._resolve_base(model.base_model)
        base = self._bases.get(key) or self._load_base(key)
        if model.adapter_path is None:
            return base, None
        path = str(Path(model.adapter_path).resolve())  # one cache entry however it is named
        if (name := base.adapters.get(path)) is not None:
            self._counts["adapter_hits"] += 1
            self._lru.move_to_end((key, path))
            return base, name
        self._counts["adapter_misses"] += 1
        name = self._attach(key, base, path)
        self._lru[(key, path)] = None
        while len(self._lru) > self.settings.adapter_cache_size:
            self._evict(*self._lru.popitem(last=False)[0])
        return base, name

    def _resolve_base(self, base_model: str) -> str:
        """``"tiny"`` as the built-in base's directory; a local path made absolute."""
        if base_model == TINY:
            if self.tiny_dir is None or not is_tiny_base(self.tiny_dir):
                where = f" in {self.tiny_dir}" if self.tiny_dir is not None else ""
                raise ConfigurationError(
                    f"base model 'tiny' is not built{where}; train a model first to build it"
                )
            return str(self.tiny_dir.resolve())
        path = Path(base_model)
        return str(path.resolve()) if path.is_dir() else base_model

    def _load_base(self, key: str) -> _Base:
        from tuneloop.train.runtime import load_causal_lm, load_tokenizer, torch_threads

        with torch_threads(self.settings.num_threads):
            tokenizer = load_tokenizer(key)
            model = load_causal_lm(key, device=self._pick_device())
        model.eval()
        base = self._bases[key] = _Base(model, tokenizer)
        return base

    def _attach(self, key: str, base: _Base, path: str) -> str:
        from peft import PeftModel

        if not Path(path).is_dir():
            raise ConfigurationError(f"adapter {path} does not exist")
        adapter_base(Path(path))  # a ConfigurationError unless it holds an adapter_config.json
        if not any((Path(path) / f).is_file() for f in ADAPTER_WEIGHTS):
            raise ConfigurationError(f"adapter {path} has no weights ({ADAPTER_WEIGHTS[0]})")
        name = f"adapter_{next(self._names)}"
        try:
            if base.peft is None:
                base.peft = PeftModel.from_pretrained(base.model, path, adapter_name=name)
            else:
                base.peft.load_adapter(path, adapter_name=name)
        except Exception as exc:  # weights missing, or shaped for another base
            # PEFT injects the LoRA layers before it loads their weights, so a failure can
            # leave half an adapter in the base: forget the base, the next request reloads it.
            self._forget(key)
            raise ConfigurationError(f"cannot load adapter {path}: {exc}") from exc
        base.peft.eval()
        base.adapters[path] = name
        return name

    def _forget(self, key: str) -> None:
        del self._bases[key]
        for entry in [entry for entry in self._lru if entry[0] == key]:
            del self._lru[entry]

    def _evict(self, key: str, path: str) -> None:
        base = self._bases[key]
        name = base.adapters.pop(path)
        self._counts["adapter_evictions"] += 1
        if not base.adapters:
            # Deleting a PeftModel's last adapter leaves it with no config to disable
            # adapters by; unload takes the LoRA layers out and gives the plain model back.
            base.model, base.peft = base.peft.unload(), None
            return
        if name in base.peft.active_adapters:
            base.peft.set_adapter(next(iter(base.adapters.values())), inference_mode=True)
        base.peft.delete_adapter(name)

    def _pick_device(self) -> str:
        if self._device is None:
            from tuneloop.train.runtime import pick_device

            self._device = pick_device(
                None if self.settings.device == "auto" else self.settings.device
            )
        return self._device

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
