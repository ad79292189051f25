"""Where torch runs: device choice, CPU thread budget, precision, and model loading.

Every torch-using entry point of :mod:`tuneloop.train` and :mod:`tuneloop.evaluate` runs
inside :func:`torch_threads`, which sets ``torch.set_num_threads`` for the call and puts
the old value back: a library call must not change a process-wide setting for good. The
default budget is the idle cores this process may run on (:func:`default_num_threads`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tuneloop.errors import ConfigurationError

MAX_DEFAULT_THREADS = 16


def default_num_threads() -> int:
    """The cores this process may use that are idle now (at least one).

    On a shared machine, OpenMP threads that outnumber the idle cores spin against the other
    processes' work: measured here, 2 threads on 2 busy cores trained 10x slower than 1.
    So the default asks for the usable cores (``sched_getaffinity``) minus the 1-minute load
    average, rounded; a dedicated machine gets all of its cores.
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    try:
        idle = usable - os.getloadavg()[0]
    except OSError:  # load average unavailable
        idle = float(usable)
    return max(1, min(usable, MAX_DEFAULT_THREADS, int(idle + 0.5)))


@contextmanager
def torch_threads(count: int | None) -> Iterator[int]:
    """Run the block with ``count`` intra-op threads (None: :func:`default_num_threads`)."""
    import torch

    wanted = count or default_num_threads()
    before = torch.get_num_threads()
    torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(before)


def pick_device(requested: str | None = None) -> str:
    """``requested`` if given, else CUDA when present, else CPU."""
    import torch

    if requested:
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigurationError(f"device {requested!r} asked for, but CUDA is not available")
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def use_bf16(device: str) -> bool:
    """bf16 autocast on GPUs that support it; float32 on CPU (bf16 there is emulated, slower)."""
    import torch

    return device.startswith("cuda") and torch.cuda.is_bf16_supported()


def load_causal_lm(base_model: str | Path, *, device: str) -> Any:
    """Any HF causal LM (hub id or local directory), in float32 (autocast handles bf16)."""
    from transformers import AutoModelForCausalLM

    try:
        model: Any = AutoModelForCausalLM.from_pretrained(str(base_model), dtype="float32")
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot load base model {base_model!r}: {exc}") from exc
    return model.to(device)


def load_tokenizer(source: str | Path) -> Any:
    """The model's tokenizer, with a pad token (its EOS when it has none)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot load a tokenizer from {source!r}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise ConfigurationError(f"the tokenizer of {source!r} has no chat template")
    return tokenizer


def count_parameters(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def context_length(model: Any) -> int | None:
    config = model.config.get_text_config()
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
