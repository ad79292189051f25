"""The built-in ``tiny`` base model: a small GPT-2 built and pre-trained on the tenant's posts.

No model can be downloaded here, so tests and the offline demo fine-tune a base made on
the spot, saved with ``save_pretrained`` like any HF model and loaded by the same code as a
hub model (``AutoModelForCausalLM.from_pretrained(path)``). :func:`build_tiny_base`:

1. renders every post as the dataset builder's two chat examples (the hook from the hook
   prompt, the body from the hook), with the same :class:`~tuneloop.dataset.examples.Prompts`;
2. trains a byte-level BPE tokenizer on their text (HF ``tokenizers``) and wraps it as a
   ``PreTrainedTokenizerFast`` with ChatML special tokens, a pad token, ``<|im_end|>`` as EOS
   and :data:`~tuneloop.train.chat.CHATML_TEMPLATE` (which marks the assistant's tokens);
3. builds a GPT-2 from :class:`TinyConfig` and pre-trains it for one pass over **all** the
   posts (packed, each conversation attending only to itself), so the base already writes
   post-like text of every engagement level; fine-tuning then shifts it toward the best;
4. saves model, tokenizer and ``tiny.json`` (config, seed, corpus hash, pre-training stats)
   atomically into ``out_dir``.

It is deterministic for a seed, a thread count and a corpus. :func:`ensure_tiny_base`
reuses a directory built with the same config and seed.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tuneloop.dataset.examples import Prompts, examples_for
from tuneloop.domain.posts import CollectedPost
from tuneloop.errors import InvalidInputError, TrainingError
from tuneloop.train.chat import CHATML_TEMPLATE, IM_END, IM_START, PAD, render_chatml
from tuneloop.train.runtime import torch_threads

TINY = "tiny"
MARKER = "tiny.json"
PostPair = tuple[str, str]  # (hook, body)


@dataclass(frozen=True)
class TinyConfig:
    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 256
    max_vocab: int = 4096
    min_frequency: int = 2
    pretrain_epochs: int = 1
    batch_tokens: int = 4096  # tokens per pre-training step, at most
    min_steps: int = 80  # small corpora get smaller steps, so the pass still teaches something
    learning_rate: float = 3e-3
    warmup_ratio: float = 0.05


def tiny_base_dir(workspace: Path, tenant_id: str) -> Path:
    """Where a tenant's built-in tiny base lives (the pipeline builds it, serving loads it)."""
    return workspace / "models" / f"tiny-{tenant_id}"


def is_tiny_base(path: Path) -> bool:
    return (path / MARKER).is_file() and (path / "config.json").is_file()


def ensure_tiny_base(
    out_dir: Path,
    posts: Callable[[], Iterable[PostPair]],
    *,
    seed: int = 0,
    config: TinyConfig = TinyConfig(),
    prompts: Prompts = Prompts(),
    num_threads: int | None = None,
) -> Path:
    """``out_dir`` if it holds a tiny base of this config and seed, else a fresh build."""
    if is_tiny_base(out_dir):
        meta = json.loads((out_dir / MARKER).read_text(encoding="utf-8"))
        if meta.get("config") == asdict(config) and meta.get("seed") == seed:
            return out_dir
    return build_tiny_base(
        posts(), out_dir, seed=seed, config=config, prompts=prompts, num_threads=num_threads
    )


def build_tiny_base(
    posts: Iterable[PostPair],
    out_dir: Path,
    *,
    seed: int = 0,
    config: TinyConfig = TinyConfig(),
    prompts: Prompts = Prompts(),
    num_threads: int | None = None,
) -> Path:
    """Build, pre-train and save the tiny base from (hook, body) pairs; returns ``out_dir``."""
    conversations = _conversations(posts, prompts)
    if len(conversations) < 2:
        raise InvalidInputError("the tiny base needs at least one post to learn from")
    started, started_cpu = time.perf_counter(), time.process_time()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=out_dir.parent))
    try:
        with torch_threads(num_threads):
            tokenizer = train_tokenizer(conversations, config)
            model, stats = _pretrain(conversations, tokenizer, config, seed)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        meta = {
            "config": asdict(config),
            "seed": seed,
            "corpus_sha256": _corpus_hash(conversations),
            "conversations": len(conversations),
            "vocab_size": len(tokenizer),
            "seconds": round(time.perf_counter() - started, 2),
            "cpu_seconds": round(time.process_time() - started_cpu, 2),
            **stats,
        }
        (staging / MARKER).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except (RuntimeError, ValueError) as exc:
        raise TrainingError(f"building the tiny base failed: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _conversations(posts: Iterable[PostPair], prompts: Prompts) -> list[list[dict[str, Any]]]:
    # The dataset builder's own formatting, so the base knows the prompts it will be tuned on.
    now = datetime.now(UTC)
    conversations: list[list[dict[str, Any]]] = []
    for hook, body in posts:
        post = CollectedPost(
            id="", persona_id=None, hook=hook, body=body, engagement_rate=0.0, ts=now
        )
        conversations.extend(example.record["messages"] for example in examples_for(post, prompts))
    return conversations


def train_tokenizer(conversations: list[list[dict[str, Any]]], config: TinyConfig) -> Any:
    """A byte-level BPE trained on the conversations' text, as a chat-ready HF tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.max_vocab,
        min_frequency=config.min_frequency,
        special_tokens=[PAD, IM_START, IM_END],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    texts = (
        part for messages in conversations for m in messages for part in (m["role"], m["content"])
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token=IM_END, pad_token=PAD, model_max_length=config.n_positions
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def _pretrain(
    conversations: list[list[dict[str, Any]]], tokenizer: Any, config: TinyConfig, seed: int
) -> tuple[Any, dict[str, Any]]:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from tuneloop.train.varlen import varlen_attention

    torch.manual_seed(seed)
    texts = [render_chatml(messages) for messages in conversations]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    documents = [ids[: config.n_positions] for ids in encoded]
    model = GPT2LMHeadModel(_gpt2_config(GPT2Config, tokenizer, config))
    model.loss_type = "ForCausalLM"  # transformers cannot guess it from "GPT2LMHeadModel"
    batches = _batches(documents, config, seed, pad_token_id=tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, betas=(0.9, 0.95))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(len(batches), config))
    model.train()
    losses = []
    with varlen_attention(model):
        for batch in batches:
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
    if not losses or not all(math.isfinite(x) for x in losses[-5:]):
        raise TrainingError("tiny base pre-training diverged")
    model.eval()
    tail = losses[-max(1, len(losses) // 10) :]
    return model, {
        "pretrain_steps": len(losses),
        "pretrain_tokens": sum(map(len, documents)) * config.pretrain_epochs,
        "pretrain_first_loss": round(losses[0], 4),
        "pretrain_final_loss": round(sum(tail) / len(tail), 4),
    }


def _gpt2_config(config_cls: Any, tokenizer: Any, config: TinyConfig) -> Any:
    eos = tokenizer.convert_tokens_to_ids(IM_END)
    return config_cls(
        vocab_size=len(tokenizer),
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        activation_function="gelu",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )


def _batches(
    documents: list[list[int]], config: TinyConfig, seed: int, *, pad_token_id: int
) -> list[dict[str, Any]]:
    """Shuffled documents in padding-free rows with full LM labels, ~step_tokens a step."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    collate = DataCollatorForLanguageModeling(pad_token_id=pad_token_id, padding_free=True)
    rng = random.Random(seed)
    total = sum(map(len, documents)) * config.pretrain_epochs
    step_tokens = max(256, min(config.batch_tokens, total // config.min_steps))
    batches: list[dict[str, Any]] = []
    for _ in range(config.pretrain_epochs):
        order = list(range(len(documents)))
        rng.shuffle(order)
        group: list[dict[str, list[int]]] = []
        size = 0
        for index in order:
            group.append({"input_ids": documents[index]})
            size += len(documents[index])
            if size >= step_tokens:
                batches.append(collate(group))
                group, size = [], 0
        if group:
            batches.append(collate(group))
    return batches


def _warmup_cosine(total: int, config: TinyConfig) -> Callable[[int], float]:
    warmup = max(1, int(total * config.warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _corpus_hash(conversations: list[list[dict[str, Any]]]) -> str:
    digest = hashlib.sha256()
    for messages in conversations:
        digest.update(json.dumps(messages, sort_keys=True).encode())
    return digest.hexdigest()
