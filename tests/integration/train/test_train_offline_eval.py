"""Offline evaluation of a real fine-tune: finite numbers, and the candidate beats its base."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.train
torch = pytest.importorskip("torch")

from tuneloop.evaluate import Gate, ModelRef, compare, heldout_loss  # noqa: E402
from tuneloop.train.port import TrainingJob  # noqa: E402


@pytest.fixture
def candidate(trained: tuple[TrainingJob, list[object]]) -> TrainingJob:
    return trained[0]


def test_the_fine_tune_beats_its_base_on_held_out_high_engagement_posts(
    candidate: TrainingJob, dataset_dir: Path
) -> None:
    report = compare(
        ModelRef(candidate.base_model, candidate.adapter_path, "candidate"),
        ModelRef(candidate.base_model, None, "base"),
        dataset_dir / "validation.jsonl",
    )
    assert report.status == "ok"
    assert all(math.isfinite(x) for x in (report.candidate_loss, report.reference_loss))
    assert report.candidate_loss < report.reference_loss
    assert report.passed, report.reason
    assert report.candidate_perplexity == pytest.approx(math.exp(report.candidate_loss))
    assert report.tokens > 100
    # The trainer scored its adapter the same way.
    assert report.candidate_loss == pytest.approx(candidate.validation_loss, rel=1e-5)


def test_the_gate_rejects_the_base_against_the_fine_tune(
    candidate: TrainingJob, dataset_dir: Path
) -> None:
    validation = dataset_dir / "validation.jsonl"
    base = ModelRef(candidate.base_model, None, "base")
    report = compare(
        base,
        ModelRef(candidate.base_model, candidate.adapter_path, "champion"),
        validation,
        gate=Gate(max_loss_increase=0.0),
    )
    assert not report.passed
    assert "more than" in report.reason
    alone = heldout_loss(base, validation)
    assert alone.loss == pytest.approx(report.candidate_loss, rel=1e-6)


def test_two_adapters_on_one_base(candidate: TrainingJob, dataset_dir: Path) -> None:
    same = ModelRef(candidate.base_model, candidate.adapter_path, "again")
    report = compare(
        ModelRef(candidate.base_model, candidate.adapter_path, "candidate"),
        same,
        dataset_dir / "validation.jsonl",
    )
    assert report.delta == pytest.approx(0.0, abs=1e-6)
    assert report.passed
