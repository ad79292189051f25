"""Local trainer throughput vs a plain TRL SFTTrainer: same tiny model, data and steps.

Builds (or reuses, under --work) the tiny base from --posts synthetic posts and a dataset of
their high-engagement ones (engagement >= 6 %), then, in the same run and alternating for
--rounds rounds, fine-tunes a LoRA adapter (same rank, targets, learning rate, batch size,
seed and number of optimizer steps) with:

  * reference: ``trl.SFTTrainer`` with its default settings (no packing, default padding
    collator, TRL's defaults for precision and gradient checkpointing) on the conversational
    dataset, with ``assistant_only_loss=True`` so both train the same objective;
  * reference-fp32: the same, with bf16 and gradient checkpointing off (what our trainer
    sets on CPU), to show how much of the gain is padding alone;
  * ours: ``tuneloop.train.local.LocalTrainer`` (pre-tokenized, padding-free batches with
    per-example attention, see ``tuneloop/train/varlen.py``).

Steps: --steps is rounded up to whole epochs (our trainer checkpoints per epoch); all runs do
exactly the same steps, over the same batches (same sampler seed). Tokens are counted the
same way for all: the real, non-padding input tokens (prompt and answer) of the examples
processed, as transformers' ``include_num_input_tokens_seen="non_padding"`` counts them
(padded batches: the attention mask's sum; padding-free batches: ids that are not the pad
id). Time is the wall time of ``trainer.train()`` only (no model loading or tokenization;
our per-epoch checkpoints are inside it). Validation loss: the mean negative log-likelihood
of the assistant tokens of validation.jsonl, computed the same way for every adapter.

Prints tokens/s of each (median over rounds; the order rotates every round), the ratio
ours/reference (goal >= 1.5 at equal or better validation loss), the validation losses, and
the padding share of a padded batch. On a shared machine wall-clock rates swing with the
neighbours' load, so tokens per CPU-second of the training loop are printed too.

LoRA dropout is 0 by default (--lora-dropout): its masks follow the tensors' shapes, so a
padded and a padding-free run would draw different ones; without it the two runs are the
same computation and their validation losses agree to float precision.

    python bench/train.py                                # 3000 posts, ~100 steps, 3 rounds
    python bench/train.py --posts 300 --steps 5 --rounds 1   # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import statistics
import sys
import time
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tuneloop.dataset.builder import BuildOptions, DatasetBuilder
from tuneloop.domain.posts import CollectedPost
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts
from tuneloop.train.chat import encode_file, read_messages
from tuneloop.train.hyperparams import Hyperparameters
from tuneloop.train.local import LocalTrainer
from tuneloop.train.runtime import default_num_threads, torch_threads
from tuneloop.train.tiny import ensure_tiny_base

LORA = {"lora_r": 8, "lora_alpha": 16}
LEARNING_RATE = 5e-3


def main() -> None:
    args = _arguments()
    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation chatter
    work = Path(args.work)
    posts = list(generate_posts(SyntheticSpec(posts=args.posts, seed=args.seed)))
    dataset = _dataset(work / f"dataset-{args.posts}-{args.seed}", posts)
    threads = args.threads or default_num_threads()
    started = time.perf_counter()
    base = ensure_tiny_base(
        work / f"tiny-{args.posts}-{args.seed}",
        lambda: [(p["hook"], p["body"]) for p in posts],
        seed=args.seed,
        num_threads=threads,
    )
    print(f"tiny base ready in {time.perf_counter() - started:.1f}s ({base})")
    n_train = sum(1 for _ in read_messages(dataset / "train.jsonl"))
    per_epoch = math.ceil(n_train / args.batch_size)
    epochs = max(1, math.ceil(args.steps / per_epoch))
    print(
        f"{n_train} train examples, batch {args.batch_size}: {epochs} epoch(s) = "
        f"{epochs * per_epoch} steps a run; {threads} thread(s)"
    )
    print(f"padding share of a padded batch: {_padding_share(base, dataset, args):.1%}")
    results: dict[str, list[dict[str, float]]] = {"reference": [], "reference-fp32": [], "ours": []}
    for round_ in range(args.rounds):
        names = list(results)
        for name in names[round_ % 3 :] + names[: round_ % 3]:  # rotate: no fixed position
            run = work / "runs" / f"{name}-{round_}"
            shutil.rmtree(run, ignore_errors=True)
            if name == "ours":
                result = _ours(base, dataset, run, epochs, args, threads)
            else:
                result = _reference(
                    base, dataset, run, epochs, args, threads, tuned=name != "reference"
                )
            results[name].append(result)
            print(
                f"round {round_ + 1} {name:>14}: {result['tokens']:.0f} tokens in "
                f"{result['seconds']:.1f}s = {result['tokens_per_s']:.0f} tok/s "
                f"({result['tokens_per_cpu_s']:.0f} tok/CPU-s), "
                f"validation loss {result['validation_loss']:.4f}",
                flush=True,
            )
    _report(results)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=100, help="rounded up to whole epochs")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="0: the idle cores")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--lora-dropout",
        type=float,
        default=0.0,
        help="dropout masks follow tensor shapes, so padded and padding-free runs draw different"
        " ones; 0 keeps the two runs the same computation",
    )
    parser.add_argument("--work", default="bench/results/train")
    return parser.parse_args()


def _dataset(out: Path, posts: list[dict[str, Any]]) -> Path:
    """What the collector writes for these posts' high-engagement subset."""
    if (out / "manifest.json").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        files = {
            name: stack.enter_context(open(out / f"{name}.jsonl", "w", encoding="utf-8"))
            for name in ("train", "validation", "meta")
        }
        builder = DatasetBuilder(BuildOptions(threshold=10), files)
        for p in posts:
            if p["engagement_rate"] is not None and p["engagement_rate"] >= 0.06:
                builder.add(
                    CollectedPost(
                        p["id"],
                        p["persona_id"],
                        p["hook"],
                        p["body"],
                        p["engagement_rate"],
                        p["ts"],
                    )
                )
        result = builder.finish()
    (out / "manifest.json").write_text(json.dumps(result.manifest()), encoding="utf-8")
    return out


def _ours(
    base: Path, dataset: Path, run: Path, epochs: int, args: argparse.Namespace, threads: int
) -> dict[str, float]:
    hp = Hyperparameters(
        epochs=epochs,
        learning_rate=LEARNING_RATE,
        batch_size=args.batch_size,
        seed=args.seed,
        warmup_ratio=0.0,
        lora_r=LORA["lora_r"],
        lora_alpha=LORA["lora_alpha"],
        lora_dropout=args.lora_dropout,
    )
    job = LocalTrainer(tiny_dir=base, num_threads=threads).train(
        dataset_dir=dataset, base_model="tiny", hyperparams=hp, output_dir=run, resume=False
    )
    tokens, seconds = job.details["session_tokens"], job.details["train_seconds"]
    cpu_seconds = job.details["train_cpu_seconds"]
    return {
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "tokens_per_cpu_s": tokens / cpu_seconds,
        "validation_loss": float(job.validation_loss or math.nan),
        "steps": len(job.steps),
    }


def _reference(
    base: Path,
    dataset: Path,
    run: Path,
    epochs: int,
    args: argparse.Namespace,
    threads: int,
    *,
    tuned: bool,
) -> dict[str, float]:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    with torch_threads(threads):
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(base)
        data = Dataset.from_list([{"messages": m} for m in read_messages(dataset / "train.jsonl")])
        import torch

        # use_cpu: TRL's default bf16=True refuses to start on a CPU-only machine without it.
        extra: dict[str, Any] = {} if torch.cuda.is_available() else {"use_cpu": True}
        if tuned:
            extra |= {"bf16": False, "activation_checkpointing": False}
        config = SFTConfig(
            output_dir=str(run),
            num_train_epochs=epochs,
            per_device_train_batch_size=args.batch_size,
            learning_rate=LEARNING_RATE,
            seed=args.seed,
            data_seed=args.seed,
            report_to="none",
            disable_tqdm=True,
            assistant_only_loss=True,
            save_strategy="no",
            include_num_input_tokens_seen="non_padding",
            **extra,
        )
        lora = LoraConfig(
            r=LORA["lora_r"],
            lora_alpha=LORA["lora_alpha"],
            lora_dropout=args.lora_dropout,
            target_modules="all-linear",
            fan_in_fan_out=True,
            task_type="CAUSAL_LM",
        )
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=data,
            processing_class=tokenizer,
            peft_config=lora,
        )
        begin, begin_cpu = time.perf_counter(), time.process_time()
        trainer.train()
        seconds, cpu_seconds = time.perf_counter() - begin, time.process_time() - begin_cpu
        loss = _validation_loss(trainer.model, tokenizer, dataset, args.batch_size)
    tokens = trainer.state.num_input_tokens_seen
    return {
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "tokens_per_cpu_s": tokens / cpu_seconds,
        "validation_loss": loss,
        "steps": trainer.state.global_step,
    }


def _validation_loss(model: Any, tokenizer: Any, dataset: Path, batch: int) -> float:
    from tuneloop.train.nll import assistant_nll

    examples = encode_file(tokenizer, dataset / "validation.jsonl", max_length=1024).examples
    return assistant_nll(
        model, examples, pad_token_id=tokenizer.pad_token_id, batch_size=batch
    ).loss


def _padding_share(base: Path, dataset: Path, args: argparse.Namespace) -> float:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    lengths = [
        len(e.input_ids)
        for e in encode_file(tokenizer, dataset / "train.jsonl", max_length=1024).examples
    ]
    random.Random(args.seed).shuffle(lengths)
    batches = [lengths[i : i + args.batch_size] for i in range(0, len(lengths), args.batch_size)]
    cells = sum(len(b) * max(b) for b in batches)
    return 1 - sum(lengths) / cells


def _report(results: dict[str, list[dict[str, float]]]) -> None:
    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    steps = {name: {r["steps"] for r in rs} for name, rs in results.items()}
    tokens = {name: {r["tokens"] for r in rs} for name, rs in results.items()}
    print(f"\nsteps per run: {steps}; tokens per run: {tokens}")
    print(f"{'median of rounds':>16} {'tok/s':>8} {'tok/CPU-s':>10} {'validation loss':>16}")
    for name in results:
        print(
            f"{name:>16} {median(name, 'tokens_per_s'):8.0f} "
            f"{median(name, 'tokens_per_cpu_s'):10.0f} {median(name, 'validation_loss'):16.4f}"
        )
    for name in ("reference", "reference-fp32"):
        wall = median("ours", "tokens_per_s") / median(name, "tokens_per_s")
        cpu = median("ours", "tokens_per_cpu_s") / median(name, "tokens_per_cpu_s")
        print(f"ours / {name}: {wall:.2f}x (wall clock), {cpu:.2f}x (CPU time)")
    ratio = median("ours", "tokens_per_s") / median("reference", "tokens_per_s")
    ours_loss, their_loss = (
        median("ours", "validation_loss"),
        median("reference", "validation_loss"),
    )
    equal_or_better = ours_loss <= their_loss * 1.001  # equal: within 0.1 %
    verdict = "met" if ratio >= 1.5 and equal_or_better else "NOT met"
    print(
        f"goal (>= 1.5x the default SFTTrainer's tok/s at equal or better validation loss): "
        f"{verdict} ({ratio:.2f}x, loss {ours_loss:.4f} vs {their_loss:.4f})"
    )
    if len(set().union(*tokens.values())) > 1:
        print("warning: the runs did not process the same number of tokens", file=sys.stderr)


if __name__ == "__main__":
    main()
