"""Per-run training hyperparameters: what the user asks for, "auto" resolved per run.

A :class:`Hyperparameters` may hold ``"auto"`` for the values that depend on the data and
the machine (epochs, learning rate, batch size, max length, target modules, like OpenAI's
fine-tuning API). :meth:`Hyperparameters.resolve` turns those into numbers for one run; the
resolved copy is what a backend trains with and what is stored with the run and logged to
MLflow (:meth:`Hyperparameters.to_params` is a flat dict of scalars, and
:meth:`Hyperparameters.from_params` reads it back).

The "auto" rules, all in :meth:`Hyperparameters.resolve`:

* ``epochs``: about ``TARGET_EXAMPLE_PASSES`` examples seen in all, at least 2 epochs and at
  most 10 (small datasets get more passes, large ones 2);
* ``batch_size``: 8 on CPU, 16 on an accelerator, and never more than a quarter of the
  examples (so an epoch is at least a few optimizer steps);
* ``learning_rate``: 5e-3 for small models (under 50M parameters, the built-in tiny base),
  2e-4 (the usual LoRA rate) for anything larger or unknown;
* ``max_length``: the model's context length, capped at 1024 tokens;
* ``target_modules``: PEFT's ``all-linear`` (every linear layer but the output head).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from tuneloop.errors import InvalidInputError, Problem

Auto = Literal["auto"]
AUTO: Auto = "auto"
ALL_LINEAR = "all-linear"

TARGET_EXAMPLE_PASSES = 1500
SMALL_MODEL_PARAMETERS = 50_000_000
Scalar = str | int | float | bool


@dataclass(frozen=True)
class Hyperparameters:
    """LoRA fine-tuning hyperparameters; any field typed ``| Auto`` may be ``"auto"``."""

    epochs: int | Auto = AUTO
    learning_rate: float | Auto = AUTO
    batch_size: int | Auto = AUTO  # examples per optimizer step
    max_length: int | Auto = AUTO  # tokens per example; longer ones keep their start
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] | Auto = AUTO
    padding_free: bool = True  # a batch as one row of examples, no padding (see varlen.py)
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise InvalidInputError("invalid hyperparameters", problems)

    @property
    def is_resolved(self) -> bool:
        return all(getattr(self, f.name) != AUTO for f in fields(self))

    def resolve(
        self,
        n_examples: int,
        device: str,
        *,
        model_max_length: int | None = None,
        model_parameters: int | None = None,
    ) -> Hyperparameters:
        """A copy with every ``"auto"`` replaced for ``n_examples`` examples on ``device``."""
        if n_examples < 1:
            raise InvalidInputError("cannot resolve hyperparameters for an empty dataset")
        on_accelerator = not device.startswith("cpu")
        batch = self.batch_size
        if batch == AUTO:
            batch = max(1, min(16 if on_accelerator else 8, n_examples // 4))
        epochs = self.epochs
        if epochs == AUTO:
            epochs = min(10, max(2, math.ceil(TARGET_EXAMPLE_PASSES / n_examples)))
        rate = self.learning_rate
        if rate == AUTO:
            small = model_parameters is not None and model_parameters < SMALL_MODEL_PARAMETERS
            rate = 5e-3 if small else 2e-4
        length = self.max_length
        if length == AUTO:
            length = min(1024, model_max_length or 1024)
        modules = (ALL_LINEAR,) if self.target_modules == AUTO else self.target_modules
        return replace(
            self,
            epochs=epochs,
            learning_rate=rate,
            batch_size=batch,
            max_length=length,
            target_modules=modules,
        )

    def to_params(self) -> dict[str, Scalar]:
        """Flat scalars (MLflow params, a JSON column); ``target_modules`` joined by ','."""
        params: dict[str, Scalar] = {}
        for key, value in asdict(self).items():
            params[key] = ",".join(value) if isinstance(value, tuple | list) else value
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Hyperparameters:
        """The inverse of :meth:`to_params` (also accepts values that went through strings)."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise InvalidInputError(f"unknown hyperparameters: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for key, raw in params.items():
            values[key] = _parse(key, raw)
        return cls(**values)


_INTS = ("epochs", "batch_size", "max_length", "lora_r", "lora_alpha", "seed")
_FLOATS = ("learning_rate", "lora_dropout", "warmup_ratio", "weight_decay")


def _parse(key: str, raw: Any) -> Any:
    if raw == AUTO:
        return AUTO
    try:
        if key in _INTS:
            return int(raw)
        if key in _FLOATS:
            return float(raw)
        if key == "padding_free":
            return (
                raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes")
            )
        if key == "target_modules":
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(item.strip() for item in items if item.strip())
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"hyperparameter {key}: cannot read {raw!r}") from exc
    return raw


def _problems(h: Hyperparameters) -> list[Problem]:
    checks: list[tuple[str, Any, bool]] = [
        ("epochs", h.epochs, h.epochs == AUTO or _int_at_least(h.epochs, 1)),
        ("batch_size", h.batch_size, h.batch_size == AUTO or _int_at_least(h.batch_size, 1)),
        ("max_length", h.max_length, h.max_length == AUTO or _int_at_least(h.max_length, 8)),
        (
            "learning_rate",
            h.learning_rate,
            h.learning_rate == AUTO or (_number(h.learning_rate) and 0 < h.learning_rate < 1),
        ),
        ("lora_r", h.lora_r, _int_at_least(h.lora_r, 1)),
        ("lora_alpha", h.lora_alpha, _int_at_least(h.lora_alpha, 1)),
        ("lora_dropout", h.lora_dropout, _number(h.lora_dropout) and 0 <= h.lora_dropout < 1),
        ("warmup_ratio", h.warmup_ratio, _number(h.warmup_ratio) and 0 <= h.warmup_ratio < 1),
        ("weight_decay", h.weight_decay, _number(h.weight_decay) and h.weight_decay >= 0),
        (
            "target_modules",
            h.target_modules,
            h.target_modules == AUTO
            or (
                isinstance(h.target_modules, tuple)
                and len(h.target_modules) > 0
                and all(isinstance(m, str) and m for m in h.target_modules)
            ),
        ),
        ("seed", h.seed, isinstance(h.seed, int) and not isinstance(h.seed, bool)),
    ]
    return [Problem(name, f"invalid value {value!r}") for name, value, ok in checks if not ok]


def _int_at_least(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
