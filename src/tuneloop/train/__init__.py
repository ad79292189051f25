"""Training: the Trainer port and its backends (local LoRA now; hosted API and Ray later).

Public API (importing it loads no torch; torch, transformers, peft and trl load when a
model is built, trained or run)::

    from tuneloop.train import Hyperparameters, LocalTrainer, build_tiny_base, TextGenerator

    build_tiny_base(pairs, tiny_dir, seed=0) -> Path           # pairs: (hook, body) of all posts
    LocalTrainer(tiny_dir=tiny_dir).train(
        dataset_dir=..., base_model="tiny" | hub id | path, hyperparams=Hyperparameters(),
        output_dir=..., resume=True, on_step=callback, should_stop=event.is_set,
    ) -> TrainingJob                                         # adapter_path, steps, losses...
    TextGenerator.load(adapter=job.adapter_path).generate("Create engaging content").text

Modules: ``port`` (the Protocol and result types), ``hyperparams``, ``chat`` (templates,
assistant-only labels), ``varlen`` (padding-free attention), ``nll`` (held-out loss),
``tiny`` (the built-in base), ``local`` (the backend), ``sft`` (its TRL/PEFT settings),
``callbacks``, ``workdir`` (the job's directory), ``generate``, ``runtime`` (device,
threads, loading).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuneloop.train.hyperparams import AUTO, Hyperparameters
from tuneloop.train.port import AbortPolicy, OnStep, ShouldStop, StepProgress, Trainer, TrainingJob

if TYPE_CHECKING:
    from tuneloop.train.generate import Generation, TextGenerator
    from tuneloop.train.local import LocalTrainer
    from tuneloop.train.tiny import TINY, TinyConfig, build_tiny_base, ensure_tiny_base

_LAZY = {
    "LocalTrainer": "tuneloop.train.local",
    "TextGenerator": "tuneloop.train.generate",
    "Generation": "tuneloop.train.generate",
    "TINY": "tuneloop.train.tiny",
    "TinyConfig": "tuneloop.train.tiny",
    "build_tiny_base": "tuneloop.train.tiny",
    "ensure_tiny_base": "tuneloop.train.tiny",
}

__all__ = [
    "AUTO",
    "TINY",
    "AbortPolicy",
    "Generation",
    "Hyperparameters",
    "LocalTrainer",
    "OnStep",
    "ShouldStop",
    "StepProgress",
    "TextGenerator",
    "TinyConfig",
    "Trainer",
    "TrainingJob",
    "build_tiny_base",
    "ensure_tiny_base",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
