"""Warm start: a LoRA that starts from a previous adapter starts where that one ended."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.train, pytest.mark.slow]
pytest.importorskip("torch")

from tuneloop.errors import TrainingError  # noqa: E402
from tuneloop.train.hyperparams import Hyperparameters  # noqa: E402
from tuneloop.train.local import LocalTrainer  # noqa: E402


def slice_of(source: Path, folder: Path, n: int = 48) -> Path:
    folder.mkdir()
    for name in ("train.jsonl", "validation.jsonl"):
        lines = (source / name).read_text(encoding="utf-8").splitlines()[:n]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_a_warm_start_begins_at_the_previous_adapters_loss(
    tiny_base: Path, dataset_dir: Path, tmp_path: Path
) -> None:
    data = slice_of(dataset_dir, tmp_path / "data")
    learn = Hyperparameters(epochs=2, learning_rate=5e-3, batch_size=8, seed=0)
    first = LocalTrainer(tiny_dir=tiny_base).train(
        dataset_dir=data, base_model="tiny", hyperparams=learn, output_dir=tmp_path / "first"
    )
    assert first.adapter_path is not None
    still = Hyperparameters(epochs=1, learning_rate=1e-9, batch_size=8, seed=0)
    cold = LocalTrainer(tiny_dir=tiny_base).train(
        dataset_dir=data, base_model="tiny", hyperparams=still, output_dir=tmp_path / "cold"
    )
    warm = LocalTrainer(tiny_dir=tiny_base, init_adapter=first.adapter_path).train(
        dataset_dir=data, base_model="tiny", hyperparams=still, output_dir=tmp_path / "warm"
    )
    # The same batches in the same order (same seed): without a warm start the two runs
    # would match exactly; from the first job's adapter every batch's loss is lower.
    assert len(warm.losses) == len(cold.losses)
    assert all(w < c for w, c in zip(warm.losses, cold.losses, strict=True))
    wrong = Hyperparameters(epochs=1, learning_rate=1e-9, batch_size=8, lora_r=4, seed=0)
    with pytest.raises(TrainingError, match=r"does not fit this LoRA|size mismatch"):
        LocalTrainer(tiny_dir=tiny_base, init_adapter=first.adapter_path).train(
            dataset_dir=data, base_model="tiny", hyperparams=wrong, output_dir=tmp_path / "bad"
        )
