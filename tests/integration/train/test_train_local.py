"""The local LoRA backend on the tiny base: learns, saves, resumes, aborts cleanly."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.train
torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from tuneloop.errors import ConfigurationError, ConflictError, TrainingError  # noqa: E402
from tuneloop.train.chat import encode_file  # noqa: E402
from tuneloop.train.generate import TextGenerator  # noqa: E402
from tuneloop.train.hyperparams import Hyperparameters  # noqa: E402
from tuneloop.train.local import LocalTrainer  # noqa: E402
from tuneloop.train.port import StepProgress, TrainingJob  # noqa: E402

BATCH = 8  # conftest's train_hp: 3 epochs of batches of 8


def _steps_per_epoch(dataset_dir: Path) -> int:
    lines = (dataset_dir / "train.jsonl").read_text().splitlines()
    return math.ceil(len(lines) / BATCH)


def test_the_shared_run_is_three_epochs_of_eight(train_hp: Hyperparameters) -> None:
    assert (train_hp.epochs, train_hp.batch_size) == (3, BATCH)


def test_training_lowers_the_loss_and_reports_every_step(
    trained: tuple[TrainingJob, list[StepProgress]], dataset_dir: Path, tiny_base: Path
) -> None:
    job, seen = trained
    per_epoch = _steps_per_epoch(dataset_dir)
    assert job.status == "succeeded"
    assert job.base_model == str(tiny_base.resolve())
    assert [s.step for s in job.steps] == list(range(1, 3 * per_epoch + 1))
    assert seen == list(job.steps)
    first = [s.loss for s in job.steps[:per_epoch]]
    last = [s.loss for s in job.steps[-per_epoch:]]
    assert sum(last) / len(last) < 0.95 * sum(first) / len(first)
    assert job.train_loss == pytest.approx(sum(last) / len(last))
    assert job.validation_loss is not None and math.isfinite(job.validation_loss)
    assert [p.name for p in job.checkpoints] == [
        f"checkpoint-{2 * per_epoch}",
        f"checkpoint-{3 * per_epoch}",
    ]


def test_tokens_seen_counts_every_real_token_once_per_epoch(
    trained: tuple[TrainingJob, list[StepProgress]], dataset_dir: Path, tiny_base: Path
) -> None:
    job, _ = trained
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    examples = encode_file(tokenizer, dataset_dir / "train.jsonl", max_length=256).examples
    assert job.tokens_seen == 3 * sum(len(e.input_ids) for e in examples)
    assert job.steps[-1].tokens_seen == job.tokens_seen


def test_only_the_lora_weights_were_trained(
    trained: tuple[TrainingJob, list[StepProgress]],
) -> None:
    job, _ = trained
    assert job.adapter_path is not None
    weights = load_file(str(job.adapter_path / "adapter_model.safetensors"))
    lora_b = {name: tensor for name, tensor in weights.items() if "lora_B" in name}
    # PEFT starts every B at zero: a non-zero B is a weight that training changed.
    assert lora_b and all(tensor.abs().max() > 0 for tensor in lora_b.values())
    modules = {name.split(".")[-3] for name in lora_b}
    assert modules == {"c_attn", "c_proj", "c_fc"}  # all-linear on GPT-2, the head left out
    assert all("lora_" in name for name in weights)
    config = json.loads((job.adapter_path / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == job.base_model


def test_the_saved_adapter_loads_back_and_writes(
    trained: tuple[TrainingJob, list[StepProgress]],
) -> None:
    job, _ = trained
    generator = TextGenerator.load(adapter=job.adapter_path)  # base read from the adapter
    hook = generator.generate("Create engaging content", max_new_tokens=40)
    assert hook.finish_reason == "stop"
    assert len(hook.text.split()) >= 3
    sampled = [
        generator.generate("Create engaging content", temperature=1.0, seed=7).text
        for _ in range(2)
    ]
    assert sampled[0] == sampled[1]  # a seed makes sampling reproducible


def test_a_finished_job_is_returned_not_retrained(
    trained: tuple[TrainingJob, list[StepProgress]],
    dataset_dir: Path,
    tiny_base: Path,
    train_hp: Hyperparameters,
) -> None:
    job, _ = trained

    def must_not_train(step: StepProgress) -> None:
        raise AssertionError("a finished job was trained again")

    again = LocalTrainer(tiny_dir=tiny_base).train(
        dataset_dir=dataset_dir,
        base_model="tiny",
        hyperparams=train_hp,
        output_dir=job.output_dir,
        on_step=must_not_train,
    )
    assert again == job
    with pytest.raises(ConflictError):
        LocalTrainer(tiny_dir=tiny_base).train(
            dataset_dir=dataset_dir,
            base_model="tiny",
            hyperparams=Hyperparameters(epochs=1),
            output_dir=job.output_dir,
        )


def _lora(job: TrainingJob) -> dict[str, Any]:
    assert job.adapter_path is not None
    return load_file(str(job.adapter_path / "adapter_model.safetensors"))


def test_abort_keeps_finished_epochs_and_resuming_matches_an_unbroken_run(
    trained: tuple[TrainingJob, list[StepProgress]],
    dataset_dir: Path,
    tiny_base: Path,
    train_hp: Hyperparameters,
    tmp_path: Path,
) -> None:
    per_epoch = _steps_per_epoch(dataset_dir)
    seen: list[StepProgress] = []
    run = tmp_path / "run"
    trainer = LocalTrainer(tiny_dir=tiny_base)
    aborted = trainer.train(
        dataset_dir=dataset_dir,
        base_model="tiny",
        hyperparams=train_hp,
        output_dir=run,
        on_step=seen.append,
        should_stop=lambda: len(seen) >= per_epoch + 2,
    )
    assert aborted.status == "aborted"
    assert aborted.adapter_path is None and not (run / "adapter").exists()
    assert len(aborted.steps) == per_epoch + 2  # stopped right after the step that asked
    assert len(seen) == per_epoch + 2
    assert [p.name for p in aborted.checkpoints] == [f"checkpoint-{per_epoch}"]
    assert aborted.left_behind == tuple(sorted(run.iterdir()))
    assert {p.name for p in aborted.left_behind} <= {
        f"checkpoint-{per_epoch}",
        "request.json",
        "README.md",
    }

    resumed = trainer.train(
        dataset_dir=dataset_dir, base_model="tiny", hyperparams=train_hp, output_dir=run
    )
    full, _ = trained
    assert resumed.status == "succeeded"
    assert resumed.resumed_from == run / f"checkpoint-{per_epoch}"
    assert [s.step for s in resumed.steps] == [s.step for s in full.steps]
    assert resumed.tokens_seen == full.tokens_seen
    ours, reference = _lora(resumed), _lora(full)
    assert all(torch.allclose(ours[name], reference[name], atol=1e-5) for name in reference)
    assert resumed.validation_loss == pytest.approx(full.validation_loss, rel=1e-4)


def test_a_crash_resumes_from_the_last_complete_checkpoint(
    dataset_dir: Path, tiny_base: Path, tmp_path: Path
) -> None:
    per_epoch = _steps_per_epoch(dataset_dir)
    hp = Hyperparameters(epochs=2, learning_rate=5e-3, batch_size=BATCH)
    run = tmp_path / "run"
    trainer = LocalTrainer(tiny_dir=tiny_base)

    def crash(step: StepProgress) -> None:
        if step.step == per_epoch + 1:
            raise RuntimeError("the machine went away")

    with pytest.raises(TrainingError, match="went away"):
        trainer.train(
            dataset_dir=dataset_dir,
            base_model="tiny",
            hyperparams=hp,
            output_dir=run,
            on_step=crash,
        )
    half_written = run / f"checkpoint-{2 * per_epoch}"
    half_written.mkdir()  # as if the crash had hit while the next checkpoint was written
    job = trainer.train(dataset_dir=dataset_dir, base_model="tiny", hyperparams=hp, output_dir=run)
    assert job.status == "succeeded"
    assert job.resumed_from == run / f"checkpoint-{per_epoch}"
    assert len(job.steps) == 2 * per_epoch
    assert (half_written / "trainer_state.json").is_file()  # rewritten, complete this time


def test_abort_before_the_first_step_can_delete_everything(
    dataset_dir: Path, tiny_base: Path, train_hp: Hyperparameters, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    job = LocalTrainer(tiny_dir=tiny_base).train(
        dataset_dir=dataset_dir,
        base_model="tiny",
        hyperparams=train_hp,
        output_dir=run,
        should_stop=lambda: True,
        on_abort="delete",
    )
    assert (job.status, job.steps, job.left_behind, job.adapter_path) == ("aborted", (), (), None)
    assert not run.exists()


def test_tiny_needs_a_directory_or_posts(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        LocalTrainer().resolve_base("tiny")
    with pytest.raises(ConfigurationError):
        LocalTrainer(tiny_dir=tmp_path / "none").resolve_base("tiny")
    assert LocalTrainer().resolve_base("some-org/some-model") == "some-org/some-model"
