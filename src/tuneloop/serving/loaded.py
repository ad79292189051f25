"""What the local model server holds in memory: base models and the LoRA adapters on them.

A base is loaded once per process. Adapters attach to one ``PeftModel`` per base as named
adapters (``load_adapter`` / ``set_adapter``), not merged copies, so a large base is never
duplicated; the bare base is served inside ``disable_adapter()``. At most
``adapter_cache_size`` adapters stay attached (LRU over all bases, removed with
``delete_adapter``; the last one of a base with ``unload``, which gives the plain model back).

Not thread-safe by design: only the local model server's worker thread touches it.

A base or adapter that is missing or cannot be loaded is a ``ModelUnavailableError`` (503):
its message names what is missing, never a path of this server (the log has the path).
"""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneloop.config import LocalServingSettings
from tuneloop.errors import ConfigurationError, ExternalServiceError
from tuneloop.train.generate import adapter_base
from tuneloop.train.tiny import TINY, is_tiny_base

ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")  # what PEFT saves
log = logging.getLogger(__name__)


class ModelUnavailableError(ExternalServiceError):
    """A locally served version's base or adapter is missing or unloadable here (503)."""

    def __init__(self, message: str) -> None:
        super().__init__("local model server", message)


def _looks_like_a_path(name: str) -> bool:
    """A filesystem path rather than a hub id (``org/name``): absolute, relative or ``~``."""
    return name.startswith(("/", "./", "../", "~", "\\")) or (len(name) > 1 and name[1] == ":")


@dataclass(frozen=True)
class LocalModel:
    base_model: str  # as stored in model_versions.base_model: "tiny", a hub id, or a path
    adapter_path: str | None = None  # a saved PEFT adapter directory; None serves the base


@dataclass
class LoadedBase:
    """One loaded base model, its tokenizer, and the PeftModel once an adapter is attached."""

    model: Any
    tokenizer: Any
    peft: Any = None
    adapters: dict[str, str] = field(default_factory=dict)  # adapter path -> adapter name

    def ready_for(self, adapter: str | None) -> tuple[Any, Any]:
        """The model to generate with, and the context to generate in, for ``adapter``
        (an attached adapter's name; None: the bare base)."""
        if adapter is not None:
            self.peft.set_adapter(adapter, inference_mode=True)
            return self.peft, nullcontext()
        if self.peft is not None:  # the model holds LoRA layers now: switch them off
            return self.peft, self.peft.disable_adapter()
        return self.model, nullcontext()


class LoadedModels:
    """Loads on first use and keeps what the settings allow. See the module docstring."""

    def __init__(self, settings: LocalServingSettings, *, tiny_dir: Path | None = None) -> None:
        self.settings = settings
        self.tiny_dir = tiny_dir
        self._bases: dict[str, LoadedBase] = {}
        self._lru: OrderedDict[tuple[str, str], None] = OrderedDict()  # (base, adapter path)
        self._names = itertools.count(1)
        self._device: str | None = None
        self.counts = dict.fromkeys(("adapter_hits", "adapter_misses", "adapter_evictions"), 0)

    def stats(self) -> dict[str, int]:
        return self.counts | {"loaded_bases": len(self._bases), "loaded_adapters": len(self._lru)}

    def load(self, model: LocalModel) -> tuple[LoadedBase, str | None]:
        """The loaded base of ``model`` and the name of its attached adapter (None: bare)."""
        key = self._resolve_base(model.base_model)
        base = self._bases.get(key) or self._load_base(key)
        if model.adapter_path is None:
            return base, None
        path = str(Path(model.adapter_path).resolve())  # one cache entry however it is named
        if (name := base.adapters.get(path)) is not None:
            self.counts["adapter_hits"] += 1
            self._lru.move_to_end((key, path))
            return base, name
        self.counts["adapter_misses"] += 1
        name = self._attach(key, base, path)
        self._lru[(key, path)] = None
        while len(self._lru) > self.settings.adapter_cache_size:
            self._evict(*self._lru.popitem(last=False)[0])
        return base, name

    def device(self) -> str:
        if self._device is None:
            from tuneloop.train.runtime import pick_device

            self._device = pick_device(
                None if self.settings.device == "auto" else self.settings.device
            )
        return self._device

    def _resolve_base(self, base_model: str) -> str:
        """``"tiny"`` as the built-in base's directory; a local path made absolute."""
        if base_model == TINY:
            if self.tiny_dir is None or not is_tiny_base(self.tiny_dir):
                log.warning("the tiny base is not built in %s", self.tiny_dir)
                raise ModelUnavailableError(
                    "base model 'tiny' is not built on this server; train a model first"
                )
            return str(self.tiny_dir.resolve())
        path = Path(base_model)
        if path.is_dir():
            return str(path.resolve())
        if _looks_like_a_path(base_model):
            log.warning("local base model %s not found", base_model)
            raise ModelUnavailableError("this version's base model is not on this server")
        return base_model  # a hub id

    def _load_base(self, key: str) -> LoadedBase:
        from tuneloop.train.runtime import load_causal_lm, load_tokenizer, torch_threads

        try:
            with torch_threads(self.settings.num_threads):
                tokenizer = load_tokenizer(key)
                model = load_causal_lm(key, device=self.device())
        except (OSError, ValueError) as exc:  # not downloadable here, or not a model
            log.warning("cannot load base model %s: %s", key, exc)
            raise ModelUnavailableError(
                "this version's base model could not be loaded on this server"
            ) from exc
        model.eval()
        base = self._bases[key] = LoadedBase(model, tokenizer)
        return base

    def _attach(self, key: str, base: LoadedBase, path: str) -> str:
        from peft import PeftModel

        try:
            if not Path(path).is_dir():
                raise ConfigurationError("does not exist")
            adapter_base(Path(path))  # a ConfigurationError unless it has an adapter_config.json
            if not any((Path(path) / f).is_file() for f in ADAPTER_WEIGHTS):
                raise ConfigurationError(f"has no weights ({ADAPTER_WEIGHTS[0]})")
        except ConfigurationError as exc:
            log.warning("adapter %s: %s", path, exc)
            raise ModelUnavailableError("this version's adapter is not on this server") from exc
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
            log.warning("cannot load adapter %s: %s", path, exc)
            raise ModelUnavailableError("this version's adapter could not be loaded") from exc
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
        self.counts["adapter_evictions"] += 1
        if not base.adapters:
            # Deleting a PeftModel's last adapter leaves it with no config to disable
            # adapters by; unload takes the LoRA layers out and gives the plain model back.
            base.model, base.peft = base.peft.unload(), None
            return
        if name in base.peft.active_adapters:
            base.peft.set_adapter(next(iter(base.adapters.values())), inference_mode=True)
        base.peft.delete_adapter(name)
