"""Held-out negative log-likelihood of the assistant tokens, token-weighted.

The one place a model's loss on examples is computed outside the training loop: the
local trainer's final validation loss and :mod:`tuneloop.evaluate` both call
:func:`assistant_nll`, on examples encoded by :mod:`tuneloop.train.chat`, so a candidate
and its champion are always scored the same way. The mean is over tokens, not batches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional

from tuneloop.train.chat import IGNORE, Encoded
from tuneloop.train.varlen import varlen_attention


@dataclass(frozen=True)
class NllResult:
    total: float  # summed negative log-likelihood, in nats
    tokens: int  # assistant tokens scored
    examples: int

    @property
    def loss(self) -> float:
        return self.total / self.tokens if self.tokens else math.nan


def assistant_nll(
    model: Any,
    examples: Sequence[Encoded],
    *,
    pad_token_id: int,
    batch_size: int = 16,
    device: str = "cpu",
) -> NllResult:
    """Sum and count of ``-log p(token)`` over the labelled tokens of ``examples``.

    Batches are padding-free rows (see :mod:`tuneloop.train.varlen`); the result equals a
    padded evaluation's.
    """
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    collate = DataCollatorForLanguageModeling(pad_token_id=pad_token_id, padding_free=True)
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    try:
        with torch.no_grad(), _autocast(device), varlen_attention(model):
            for start in range(0, len(examples), batch_size):
                chunk = examples[start : start + batch_size]
                batch = collate([{"input_ids": e.input_ids, "labels": e.labels} for e in chunk])
                inputs = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
                labels = inputs.pop("labels")
                logits = model(**inputs).logits
                targets = labels[:, 1:]
                total += functional.cross_entropy(
                    logits[:, :-1].float().reshape(-1, logits.size(-1)),
                    targets.reshape(-1),
                    ignore_index=IGNORE,
                    reduction="sum",
                ).item()
                tokens += int((targets != IGNORE).sum())
    finally:
        model.train(was_training)
    return NllResult(total=total, tokens=tokens, examples=len(examples))


def _autocast(device: str) -> Any:
    from tuneloop.train.runtime import use_bf16

    if use_bf16(device):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return torch.autocast(device_type="cpu", enabled=False)
