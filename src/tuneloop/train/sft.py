"""TRL's SFTTrainer, configured for the local backend: LoRA on pre-tokenized examples.

Everything that is a choice about TRL, transformers and PEFT lives here (why: see
docs/decisions/0004-local-training.md): the examples arrive tokenized with their
assistant-only labels (``max_length=None``: already truncated), batches are padding-free
(``padding_free``; the model's attention is switched by :mod:`tuneloop.train.varlen`),
float32 on CPU and bf16 on capable GPUs, no gradient checkpointing, a checkpoint per epoch,
a log entry per step, nothing printed and nothing reported to outside trackers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuneloop.train.chat import Encoded
from tuneloop.train.hyperparams import ALL_LINEAR, Hyperparameters
from tuneloop.train.runtime import use_bf16


def sft_trainer(
    model: Any,
    tokenizer: Any,
    examples: list[Encoded],
    hp: Hyperparameters,
    *,
    output_dir: Path,
    device: str,
    callbacks: list[Any],
    keep_checkpoints: int | None,
) -> Any:
    """An ``SFTTrainer`` that trains a LoRA adapter on ``examples`` with resolved ``hp``."""
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    data = Dataset.from_dict(
        {"input_ids": [e.input_ids for e in examples], "labels": [e.labels for e in examples]}
    )
    trainer = SFTTrainer(
        model=model,
        args=sft_config(hp, output_dir=output_dir, device=device, keep=keep_checkpoints),
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=lora_config(model, hp),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # progress goes through on_step, not stdout
    return trainer


def sft_config(hp: Hyperparameters, *, output_dir: Path, device: str, keep: int | None) -> Any:
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=int(hp.epochs),
        per_device_train_batch_size=int(hp.batch_size),
        per_device_eval_batch_size=int(hp.batch_size),
        learning_rate=float(hp.learning_rate),
        lr_scheduler_type="linear",
        warmup_steps=hp.warmup_ratio,  # a float below 1 is a share of the steps
        weight_decay=hp.weight_decay,
        seed=hp.seed,
        data_seed=hp.seed,
        logging_strategy="steps",
        logging_steps=1,
        save_strategy="epoch",
        save_total_limit=keep,
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        activation_checkpointing=False,
        bf16=use_bf16(device),
        fp16=False,
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
        max_length=None,
        packing=False,
        padding_free=hp.padding_free,
        include_num_input_tokens_seen="non_padding",
    )


def lora_config(model: Any, hp: Hyperparameters) -> Any:
    from peft import LoraConfig
    from transformers.pytorch_utils import Conv1D

    targets = hp.target_modules
    return LoraConfig(
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=ALL_LINEAR if targets == (ALL_LINEAR,) else list(targets),
        # GPT-2's layers are Conv1D (weights stored transposed); PEFT must be told.
        fan_in_fan_out=any(isinstance(m, Conv1D) for m in model.modules()),
        task_type="CAUSAL_LM",
    )
