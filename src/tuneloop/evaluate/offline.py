"""Offline evaluation: held-out loss of models on a validation JSONL, and the comparison.

::

    report = compare(
        ModelRef(job.base_model, job.adapter_path, "candidate"),
        ModelRef(job.base_model, None, "base"),          # or the champion's adapter
        dataset_dir / "validation.jsonl",
        gate=Gate(max_loss_increase=0.0),
    )
    report.passed, report.reason, report.metrics()

Examples are encoded and scored exactly as during training (:mod:`tuneloop.train.chat`,
:mod:`tuneloop.train.nll`): loss on the assistant's tokens only, token-weighted. Models on
the same base share one loaded copy (the base is scored before any adapter is attached).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuneloop.errors import InvalidInputError, TrainingError, TuneloopError
from tuneloop.evaluate.report import Gate, LossMeasurement, ModelRef, OfflineReport, judge


def heldout_loss(
    model: ModelRef,
    validation_path: Path,
    *,
    max_length: int | None = None,
    batch_size: int = 16,
    device: str | None = None,
    num_threads: int | None = None,
) -> LossMeasurement:
    """Mean assistant-token NLL of ``model`` on the examples of ``validation_path``."""
    return _measure([model], validation_path, max_length, batch_size, device, num_threads)[0]


def compare(
    candidate: ModelRef,
    reference: ModelRef,
    validation_path: Path,
    *,
    gate: Gate = Gate(),
    max_length: int | None = None,
    batch_size: int = 16,
    device: str | None = None,
    num_threads: int | None = None,
) -> OfflineReport:
    """Score both models on the same held-out examples and apply ``gate``."""
    measured = _measure(
        [candidate, reference], validation_path, max_length, batch_size, device, num_threads
    )
    return judge(
        measured[0], measured[1], gate, candidate_name=candidate.name, reference_name=reference.name
    )


def _measure(
    refs: Sequence[ModelRef],
    path: Path,
    max_length: int | None,
    batch_size: int,
    device: str | None,
    num_threads: int | None,
) -> list[LossMeasurement]:
    from tuneloop.train.runtime import pick_device, torch_threads

    if not path.is_file():
        raise InvalidInputError(f"no validation file at {path}")
    results: dict[int, LossMeasurement] = {}
    chosen = pick_device(device)
    try:
        with torch_threads(num_threads):
            for base in dict.fromkeys(ref.base_model for ref in refs):
                group = [(i, ref) for i, ref in enumerate(refs) if ref.base_model == base]
                results.update(_measure_base(base, group, path, max_length, batch_size, chosen))
    except TuneloopError:
        raise
    except Exception as exc:  # torch, transformers, peft
        raise TrainingError(f"offline evaluation failed: {type(exc).__name__}: {exc}") from exc
    return [results[i] for i in range(len(refs))]


def _measure_base(
    base: str,
    group: list[tuple[int, ModelRef]],
    path: Path,
    max_length: int | None,
    batch_size: int,
    device: str,
) -> dict[int, LossMeasurement]:
    from tuneloop.train.chat import encode_file
    from tuneloop.train.nll import assistant_nll
    from tuneloop.train.runtime import context_length, load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(base)
    model = load_causal_lm(base, device=device)
    length = max_length or min(1024, context_length(model) or 1024)
    examples = encode_file(tokenizer, path, max_length=length).examples
    fingerprint = _tokenizer_fingerprint(tokenizer)
    results: dict[int, LossMeasurement] = {}
    peft_model: Any = None
    for index, ref in sorted(group, key=lambda item: item[1].adapter is not None):  # bases first
        scored = model
        if ref.adapter is not None:
            peft_model = _attach(model, peft_model, ref.adapter, f"a{index}")
            scored = peft_model
        nll = assistant_nll(
            scored,
            examples,
            pad_token_id=tokenizer.pad_token_id,
            batch_size=batch_size,
            device=device,
        )
        results[index] = LossMeasurement(
            loss=nll.loss, tokens=nll.tokens, examples=nll.examples, tokenizer=fingerprint
        )
    return results


def _attach(model: Any, peft_model: Any, adapter: Path, name: str) -> Any:
    from peft import PeftModel

    if peft_model is None:
        return PeftModel.from_pretrained(model, str(adapter), adapter_name=name)
    peft_model.load_adapter(str(adapter), adapter_name=name)
    peft_model.set_adapter(name)
    return peft_model


def _tokenizer_fingerprint(tokenizer: Any) -> str:
    vocab = sorted(tokenizer.get_vocab().items())
    payload = json.dumps([vocab, str(tokenizer.chat_template)]).encode()
    return hashlib.sha256(payload).hexdigest()[:16]
