"""Offline evaluation: a candidate's held-out loss against its champion (or base), gated.

Public API (torch is imported only when a model is scored)::

    from tuneloop.evaluate import Gate, ModelRef, compare, heldout_loss
    report = compare(ModelRef(base, adapter, "candidate"), ModelRef(base, None, "base"),
                     dataset_dir / "validation.jsonl", gate=Gate(max_loss_increase=0.0))

:mod:`tuneloop.evaluate.report` holds the pure math (perplexity, the gate, the report);
:mod:`tuneloop.evaluate.offline` loads models and scores them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuneloop.evaluate.report import (
    Gate,
    LossMeasurement,
    ModelRef,
    OfflineReport,
    judge,
    perplexity,
)

if TYPE_CHECKING:
    from tuneloop.evaluate.offline import compare, heldout_loss

__all__ = [
    "Gate",
    "LossMeasurement",
    "ModelRef",
    "OfflineReport",
    "compare",
    "heldout_loss",
    "judge",
    "perplexity",
]


def __getattr__(name: str) -> Any:
    if name in ("compare", "heldout_loss"):
        from tuneloop.evaluate import offline

        return getattr(offline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
