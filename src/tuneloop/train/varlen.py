"""Padding-free ("varlen") attention for CPU and GPU, without FlashAttention.

Posts are short and uneven (a hook is ~30 tokens, a body ~100), so a padded batch spends
about half of its compute on padding. In padding-free batching (TRL's
``DataCollatorForLanguageModeling(padding_free=True)``) a batch is one row holding every
example back to back, with ``position_ids`` restarting at 0 per example and the sequence
boundaries in ``cu_seq_lens_q``. FlashAttention's varlen kernel uses those boundaries; it
only exists on some GPUs. transformers' SDPA path instead builds a block-diagonal mask over
the whole row and computes attention for every pair in it: for a batch of 8 posts that is
about four times the attention work of the padded batch.

This module registers one more attention implementation in transformers'
``AttentionInterface``: it splits the row at the boundaries and runs causal SDPA on each
example (``torch.split``, so the backward is one concatenation). Attention work is then
``sum(length**2)``, the matmuls see no padding at all, and results equal the padded batch's
(see the tests). It needs ``cu_seq_lens_q``, so it is switched on only around training and
scoring, with :func:`varlen_attention`; generation uses the model's own attention.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.nn import functional

from tuneloop.errors import TrainingError

NAME = "tuneloop_varlen"


def varlen_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    cu_seq_lens_q: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Causal attention per example of a padding-free row; returns (batch, seq, heads, dim)."""
    if cu_seq_lens_q is None or query.shape[0] != 1:
        raise TrainingError("varlen attention needs one padding-free row with cu_seq_lens_q")
    lengths = cu_seq_lens_q.diff().tolist()
    gqa = key.shape[1] != query.shape[1]
    outputs = [
        functional.scaled_dot_product_attention(
            q, k, v, is_causal=True, scale=scaling, dropout_p=dropout, enable_gqa=gqa
        )
        for q, k, v in zip(
            query.split(lengths, dim=2),
            key.split(lengths, dim=2),
            value.split(lengths, dim=2),
            strict=True,
        )
    ]
    return torch.cat(outputs, dim=2).transpose(1, 2).contiguous(), None


def register() -> None:
    """Add :func:`varlen_sdpa` to transformers' registry (idempotent).

    With a name that has no mask function registered, transformers builds no attention
    mask at all (``masking_utils``), which is what this implementation wants.
    """
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, varlen_sdpa)


@contextmanager
def varlen_attention(model: Any) -> Iterator[None]:
    """Run the block with :func:`varlen_sdpa` as ``model``'s attention, then restore it."""
    register()
    before = model.config._attn_implementation
    model.set_attn_implementation(NAME)
    try:
        yield
    finally:
        model.set_attn_implementation(before)
