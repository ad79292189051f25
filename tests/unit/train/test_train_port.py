"""The TrainingJob result: JSON round trip and its flat metrics (no torch needed)."""

from __future__ import annotations

import json
from pathlib import Path

from tuneloop.train.hyperparams import Hyperparameters
from tuneloop.train.port import StepProgress, TrainingJob


def _job(tmp_path: Path) -> TrainingJob:
    steps = tuple(
        StepProgress(
            step=i,
            total_steps=4,
            epoch=i / 2,
            loss=2.0 - i / 4,
            learning_rate=1e-3,
            tokens_seen=100 * i,
        )
        for i in range(1, 5)
    )
    return TrainingJob(
        backend="local",
        status="succeeded",
        base_model="/models/tiny",
        output_dir=tmp_path,
        hyperparams=Hyperparameters().resolve(40, "cpu"),
        adapter_path=tmp_path / "adapter",
        steps=steps,
        tokens_seen=400,
        train_loss=1.125,
        validation_loss=1.3,
        checkpoints=(tmp_path / "checkpoint-2", tmp_path / "checkpoint-4"),
        device="cpu",
        duration_seconds=3.5,
        details={"examples": 40},
    )


def test_job_round_trips_through_its_json_file(tmp_path: Path) -> None:
    job = _job(tmp_path)
    job.save(tmp_path / "job.json")
    assert TrainingJob.from_json(json.loads((tmp_path / "job.json").read_text())) == job


def test_metrics_and_losses(tmp_path: Path) -> None:
    job = _job(tmp_path)
    assert job.losses == [1.75, 1.5, 1.25, 1.0]
    assert job.metrics() == {
        "tokens_seen": 400.0,
        "steps": 4.0,
        "duration_seconds": 3.5,
        "train_loss": 1.125,
        "validation_loss": 1.3,
    }
