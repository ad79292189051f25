"""Offline evaluation math (pure): perplexity, the promotion gate, and the report.

A candidate passes when its held-out loss (mean negative log-likelihood per assistant
token, in nats) is no worse than the reference's by more than the gate allows. Like the
statistics, this never raises on degenerate input: the report carries a ``status``
("ok", "no_data", "not_finite", "incomparable") and ``passed`` is then false.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

Status = Literal["ok", "no_data", "not_finite", "incomparable"]


def perplexity(loss: float) -> float:
    """``exp(loss)``; infinite for a loss past what a float holds, NaN for NaN."""
    if math.isnan(loss):
        return math.nan
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


@dataclass(frozen=True)
class ModelRef:
    """A model to score: a base (hub id or directory) and optionally a LoRA adapter on it."""

    base_model: str
    adapter: Path | None = None
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or (str(self.adapter) if self.adapter else self.base_model)


@dataclass(frozen=True)
class LossMeasurement:
    loss: float  # nats per assistant token
    tokens: int
    examples: int
    tokenizer: str = ""  # a fingerprint of the vocabulary: losses compare only within one

    @property
    def perplexity(self) -> float:
        return perplexity(self.loss)


@dataclass(frozen=True)
class Gate:
    """How much worse than the reference a candidate may be and still pass."""

    max_loss_increase: float = 0.0  # nats per token, candidate minus reference
    max_relative_increase: float | None = None  # e.g. 0.01: at most 1 % worse
    min_tokens: int = 1  # fewer scored tokens than this: no decision


@dataclass(frozen=True)
class OfflineReport:
    status: Status
    passed: bool
    reason: str
    candidate: str
    reference: str
    candidate_loss: float
    reference_loss: float
    candidate_perplexity: float
    reference_perplexity: float
    delta: float  # candidate_loss - reference_loss (negative: the candidate is better)
    relative_delta: float
    tokens: int
    examples: int
    gate: Gate

    def metrics(self) -> dict[str, float]:
        """The numbers, flat (MLflow metrics)."""
        return {
            "offline_candidate_loss": self.candidate_loss,
            "offline_reference_loss": self.reference_loss,
            "offline_candidate_perplexity": self.candidate_perplexity,
            "offline_reference_perplexity": self.reference_perplexity,
            "offline_loss_delta": self.delta,
            "offline_passed": float(self.passed),
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in data.items()
        }


def judge(
    candidate: LossMeasurement,
    reference: LossMeasurement,
    gate: Gate = Gate(),
    *,
    candidate_name: str = "candidate",
    reference_name: str = "reference",
) -> OfflineReport:
    """Apply ``gate`` to two measurements on the same held-out examples."""
    delta = candidate.loss - reference.loss
    relative = (
        delta / reference.loss if reference.loss and math.isfinite(reference.loss) else math.nan
    )
    status, passed, reason = _decide(candidate, reference, gate, delta, relative)
    return OfflineReport(
        status=status,
        passed=passed,
        reason=reason,
        candidate=candidate_name,
        reference=reference_name,
        candidate_loss=candidate.loss,
        reference_loss=reference.loss,
        candidate_perplexity=candidate.perplexity,
        reference_perplexity=reference.perplexity,
        delta=delta,
        relative_delta=relative,
        tokens=min(candidate.tokens, reference.tokens),
        examples=min(candidate.examples, reference.examples),
        gate=gate,
    )


def _decide(
    candidate: LossMeasurement,
    reference: LossMeasurement,
    gate: Gate,
    delta: float,
    relative: float,
) -> tuple[Status, bool, str]:
    if candidate.tokenizer != reference.tokenizer:
        return (
            "incomparable",
            False,
            "the models use different tokenizers: per-token losses differ in unit",
        )
    tokens = min(candidate.tokens, reference.tokens)
    if tokens < max(1, gate.min_tokens):
        return (
            "no_data",
            False,
            f"{tokens} held-out tokens scored, {max(1, gate.min_tokens)} needed",
        )
    for who, value in (("candidate", candidate.loss), ("reference", reference.loss)):
        if not math.isfinite(value):
            return "not_finite", False, f"the {who}'s held-out loss is {value}"
    summary = f"loss {candidate.loss:.4f} vs {reference.loss:.4f} (delta {delta:+.4f}"
    if delta > gate.max_loss_increase:
        return "ok", False, f"{summary}, more than the {gate.max_loss_increase:+.4f} allowed)"
    limit = gate.max_relative_increase
    if limit is not None and relative > limit:
        return "ok", False, f"{summary}, {relative:+.2%} is more than the {limit:+.2%} allowed)"
    return "ok", True, f"{summary}, within the {gate.max_loss_increase:+.4f} allowed)"
