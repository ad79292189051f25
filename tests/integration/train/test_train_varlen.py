"""Padding-free training is exact: the same losses and gradients as a padded batch."""

from __future__ import annotations

import random
from typing import Any

import pytest

pytestmark = pytest.mark.train
torch = pytest.importorskip("torch")

from torch.nn import functional  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM  # noqa: E402
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling  # noqa: E402

from tuneloop.errors import TrainingError  # noqa: E402
from tuneloop.train.chat import IGNORE, Encoded  # noqa: E402
from tuneloop.train.nll import assistant_nll  # noqa: E402
from tuneloop.train.varlen import varlen_attention  # noqa: E402

PAD = 0


def _gpt2() -> Any:
    torch.manual_seed(0)
    return GPT2LMHeadModel(
        GPT2Config(
            vocab_size=97,
            n_positions=64,
            n_embd=32,
            n_layer=2,
            n_head=4,
            bos_token_id=1,
            eos_token_id=1,
            pad_token_id=PAD,
            resid_pdrop=0.0,  # dropout would make the two runs differ
            embd_pdrop=0.0,
            attn_pdrop=0.0,
        )
    )


def _llama_gqa() -> Any:
    torch.manual_seed(0)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=97,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            pad_token_id=PAD,
            bos_token_id=1,
            eos_token_id=1,
            max_position_embeddings=64,
        )
    )


def _examples(count: int = 7) -> list[Encoded]:
    rng = random.Random(5)
    examples = []
    for _ in range(count):
        length = rng.randint(5, 40)
        ids = [rng.randint(2, 96) for _ in range(length)]
        prompt = rng.randint(1, length - 2)
        examples.append(Encoded(ids, [IGNORE] * prompt + ids[prompt:]))
    return examples


def _padded_loss(model: Any, examples: list[Encoded]) -> Any:
    """The reference: a right-padded batch with an attention mask, summed token NLL."""
    batch = DataCollatorForLanguageModeling(pad_token_id=PAD)(
        [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]
    )
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)),
        batch["labels"][:, 1:].reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )


def _varlen_loss(model: Any, examples: list[Encoded]) -> Any:
    batch = DataCollatorForLanguageModeling(pad_token_id=PAD, padding_free=True)(
        [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]
    )
    labels = batch.pop("labels")
    with varlen_attention(model):
        logits = model(**batch).logits
    return functional.cross_entropy(
        logits[0, :-1], labels[0, 1:], ignore_index=IGNORE, reduction="sum"
    )


@pytest.mark.parametrize("build", [_gpt2, _llama_gqa], ids=["gpt2", "llama-gqa"])
def test_losses_and_gradients_equal_the_padded_batch(build: Any) -> None:
    examples = _examples()
    reference_model, varlen_model = build(), build()
    reference = _padded_loss(reference_model, examples)
    ours = _varlen_loss(varlen_model, examples)
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5)
    reference.backward()
    ours.backward()
    for (name, p), q in zip(
        reference_model.named_parameters(), varlen_model.parameters(), strict=True
    ):
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6), name


def test_assistant_nll_counts_only_labelled_tokens() -> None:
    model, examples = _gpt2(), _examples()
    result = assistant_nll(model, examples, pad_token_id=PAD, batch_size=3)
    with torch.no_grad():
        reference = _padded_loss(model, examples).item()
    assert result.tokens == sum(e.loss_tokens for e in examples)
    assert result.total == pytest.approx(reference, rel=1e-5)
    assert result.loss == pytest.approx(reference / result.tokens, rel=1e-5)


def test_varlen_needs_boundaries_and_restores_the_model() -> None:
    model = _gpt2()
    before = model.config._attn_implementation
    with varlen_attention(model), pytest.raises(TrainingError):
        model(input_ids=torch.tensor([[5, 6, 7]]))
    assert model.config._attn_implementation == before
