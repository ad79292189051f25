"""The Ray backend: the tiny model trained by two local Ray workers (DDP on CPU, gloo)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytestmark = [pytest.mark.train, pytest.mark.slow]
pytest.importorskip("torch")
pytest.importorskip("ray.train.torch", reason="the distributed extra (ray[train]) is not installed")

from safetensors.torch import load_file  # noqa: E402

from tuneloop.train.hyperparams import Hyperparameters  # noqa: E402
from tuneloop.train.ray_backend import RayTrainer  # noqa: E402


def small_dataset(source: Path, folder: Path, n_train: int = 64, n_valid: int = 8) -> Path:
    """A slice of the shared dataset: a few steps per worker keep this test short."""
    folder.mkdir()
    for name, n in (("train.jsonl", n_train), ("validation.jsonl", n_valid)):
        lines = (source / name).read_text(encoding="utf-8").splitlines()[:n]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_two_workers_share_the_data_lower_the_loss_and_train_the_adapter(
    tiny_base: Path, dataset_dir: Path, tmp_path: Path
) -> None:
    dataset_dir = small_dataset(dataset_dir, tmp_path / "dataset")
    hp = Hyperparameters(epochs=2, learning_rate=5e-3, batch_size=8, seed=0)
    seen: list[float] = []
    job = RayTrainer(tiny_dir=tiny_base, num_workers=2).train(
        dataset_dir=dataset_dir,
        base_model="tiny",
        hyperparams=hp,
        output_dir=tmp_path / "job",
        on_step=lambda p: seen.append(p.loss),
    )
    assert job.status == "succeeded" and job.backend == "ray"
    n_train = len((dataset_dir / "train.jsonl").read_text().splitlines())
    per_epoch = math.ceil(n_train / 2 / 8)  # each worker takes half the examples
    assert len(job.steps) == 2 * per_epoch
    assert seen == job.losses
    first, last = job.losses[:per_epoch], job.losses[-per_epoch:]
    assert sum(last) / len(last) < sum(first) / len(first)
    assert job.adapter_path is not None
    lora_b = [
        t
        for n, t in load_file(str(job.adapter_path / "adapter_model.safetensors")).items()
        if "lora_B" in n
    ]
    assert lora_b and all(t.abs().max() > 0 for t in lora_b)  # B starts at zero
    reported = Path(job.details["ray_checkpoint"])
    assert (reported / "adapter_model.safetensors").is_file()  # the adapter, reported to Ray
    assert job.details["num_workers"] == 2
    again = RayTrainer(tiny_dir=tiny_base, num_workers=2).train(
        dataset_dir=dataset_dir, base_model="tiny", hyperparams=hp, output_dir=tmp_path / "job"
    )
    assert again.adapter_path == job.adapter_path  # finished: found, not trained again


def test_a_stop_ends_every_worker_and_a_rerun_resumes(
    tiny_base: Path, dataset_dir: Path, tmp_path: Path
) -> None:
    data = small_dataset(dataset_dir, tmp_path / "dataset", n_train=128)
    hp = Hyperparameters(epochs=2, learning_rate=5e-3, batch_size=8, seed=0)
    out = tmp_path / "job"

    def after_first_epoch() -> bool:  # the driver's stop request, once epoch 1 is saved
        return any(out.glob("checkpoint-*"))

    stopped = RayTrainer(tiny_dir=tiny_base, num_workers=2).train(
        dataset_dir=data,
        base_model="tiny",
        hyperparams=hp,
        output_dir=out,
        should_stop=after_first_epoch,
    )
    assert stopped.status == "aborted"  # fit returned: every worker stopped at the same step
    assert [p.name for p in stopped.checkpoints] == ["checkpoint-8"]
    resumed = RayTrainer(tiny_dir=tiny_base, num_workers=2).train(
        dataset_dir=data, base_model="tiny", hyperparams=hp, output_dir=out
    )
    assert resumed.status == "succeeded"
    assert resumed.resumed_from is not None and resumed.resumed_from.name == "checkpoint-8"
    assert [s.step for s in resumed.steps] == list(range(1, 17))
