"""The pipeline's offline gate asks for a real improvement by default: a tie does not pass."""

from __future__ import annotations

from tuneloop.config import EvaluationSettings
from tuneloop.evaluate.report import Gate, LossMeasurement, judge


def _m(loss: float) -> LossMeasurement:
    return LossMeasurement(loss=loss, tokens=500, examples=20, tokenizer="t1")


def test_a_tie_is_gated_and_a_real_improvement_passes_with_the_default_margin() -> None:
    gate = Gate(max_loss_increase=EvaluationSettings().max_loss_increase)
    tie = judge(_m(1.5), _m(1.5), gate)
    assert not tie.passed and "more than the -0.0010 allowed" in tie.reason
    assert not judge(_m(1.4995), _m(1.5), gate).passed  # better, but by less than the margin
    assert judge(_m(1.49), _m(1.5), gate).passed


def test_the_margin_is_configurable() -> None:
    gate = Gate(max_loss_increase=EvaluationSettings(max_loss_increase=0.0).max_loss_increase)
    assert judge(_m(1.5), _m(1.5), gate).passed
