"""Offline evaluation math: perplexity and the gate, without torch."""

from __future__ import annotations

import math

import pytest

from tuneloop.evaluate.report import Gate, LossMeasurement, judge, perplexity


def _m(loss: float, tokens: int = 500, tokenizer: str = "t1") -> LossMeasurement:
    return LossMeasurement(loss=loss, tokens=tokens, examples=20, tokenizer=tokenizer)


def test_perplexity_is_exp_of_the_loss() -> None:
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(12.5)) == pytest.approx(12.5)
    assert perplexity(1e6) == math.inf
    assert math.isnan(perplexity(math.nan))


def test_a_better_candidate_passes_the_default_gate() -> None:
    report = judge(_m(1.20), _m(1.50))
    assert (report.status, report.passed) == ("ok", True)
    assert report.delta == pytest.approx(-0.30)
    assert report.relative_delta == pytest.approx(-0.2)
    assert report.candidate_perplexity == pytest.approx(math.exp(1.2))
    assert "-0.3000" in report.reason


def test_a_worse_candidate_fails_unless_the_gate_allows_it() -> None:
    worse = judge(_m(1.52), _m(1.50))
    assert not worse.passed
    assert "more than" in worse.reason
    assert judge(_m(1.52), _m(1.50), Gate(max_loss_increase=0.05)).passed
    relative = judge(_m(1.52), _m(1.50), Gate(max_loss_increase=0.05, max_relative_increase=0.01))
    assert not relative.passed
    assert "%" in relative.reason


def test_equal_losses_pass_the_no_regression_gate() -> None:
    assert judge(_m(1.5), _m(1.5)).passed


@pytest.mark.parametrize(
    ("candidate", "reference", "gate", "status"),
    [
        (_m(1.0, tokens=0), _m(1.5), Gate(), "no_data"),
        (_m(1.0, tokens=40), _m(1.5), Gate(min_tokens=100), "no_data"),
        (_m(math.nan), _m(1.5), Gate(), "not_finite"),
        (_m(1.0), _m(math.inf), Gate(), "not_finite"),
        (_m(1.0, tokenizer="a"), _m(1.5, tokenizer="b"), Gate(), "incomparable"),
    ],
)
def test_degenerate_inputs_give_a_status_not_an_exception(
    candidate: LossMeasurement, reference: LossMeasurement, gate: Gate, status: str
) -> None:
    report = judge(candidate, reference, gate)
    assert report.status == status
    assert not report.passed
    assert report.reason


def test_report_serialises_non_finite_numbers_as_null() -> None:
    report = judge(_m(math.nan), _m(1.5))
    data = report.to_json()
    assert data["candidate_loss"] is None
    assert data["reference_loss"] == 1.5
    assert set(report.metrics()) >= {
        "offline_candidate_loss",
        "offline_loss_delta",
        "offline_passed",
    }
