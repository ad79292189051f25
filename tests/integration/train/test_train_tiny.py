"""The built-in tiny base: a standard HF model, pre-trained on the posts, deterministic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.train
torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from tuneloop.train.chat import IGNORE, encode_messages, render_chatml  # noqa: E402
from tuneloop.train.tiny import TinyConfig, build_tiny_base, ensure_tiny_base  # noqa: E402

MESSAGES = [
    {
        "role": "user",
        "content": "Stop doing meal prep the way everyone tells you.\n\nWrite a detailed post:",
    },
    {"role": "assistant", "content": "I learned this the hard way. Measure what you do."},
]


def test_it_loads_like_any_hf_model_and_learned_from_the_posts(tiny_base: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    assert (model.config.model_type, model.config.n_layer, model.config.n_embd) == ("gpt2", 2, 128)
    assert model.config.vocab_size == len(tokenizer)
    assert (tokenizer.pad_token, tokenizer.eos_token) == ("<|pad|>", "<|im_end|>")
    meta = json.loads((tiny_base / "tiny.json").read_text())
    assert meta["pretrain_final_loss"] < meta["pretrain_first_loss"] / 3


def test_template_fast_render_and_assistant_mask_agree(tiny_base: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    by_template = tokenizer.apply_chat_template(MESSAGES, tokenize=True, return_dict=True)[
        "input_ids"
    ]
    by_render = tokenizer(render_chatml(MESSAGES), add_special_tokens=False)["input_ids"]
    assert list(by_template) == by_render
    encoded, cut = encode_messages(tokenizer, MESSAGES, max_length=256)
    learned = [label for label in encoded.labels if label != IGNORE]
    assert not cut
    assert tokenizer.decode(learned) == MESSAGES[1]["content"] + "<|im_end|>"
    # Without generation markers, the prompt-prefix rule must find the same tokens.
    tokenizer.chat_template = tokenizer.chat_template.replace("{% generation %}", "").replace(
        "{% endgeneration %}", ""
    )
    by_prefix, _ = encode_messages(tokenizer, MESSAGES, max_length=256)
    assert by_prefix == encoded


def test_truncation_keeps_the_start(tiny_base: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    encoded, cut = encode_messages(tokenizer, MESSAGES, max_length=20)
    assert cut and len(encoded.input_ids) == len(encoded.labels) == 20


def _weights(path: Path) -> dict[str, Any]:
    return load_file(str(path / "model.safetensors"))


def test_build_is_deterministic_per_seed_and_reused(
    synthetic_posts: list[dict[str, Any]], tmp_path: Path
) -> None:
    pairs = [(post["hook"], post["body"]) for post in synthetic_posts[:40]]
    quick = TinyConfig(min_steps=8)
    first = build_tiny_base(pairs, tmp_path / "a", seed=3, config=quick)
    again = build_tiny_base(pairs, tmp_path / "b", seed=3, config=quick)
    other = build_tiny_base(pairs, tmp_path / "c", seed=4, config=quick)
    a, b, c = _weights(first), _weights(again), _weights(other)
    assert (first / "tokenizer.json").read_text() == (again / "tokenizer.json").read_text()
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert any(not torch.equal(a[name], c[name]) for name in a)

    def no_posts() -> list[tuple[str, str]]:
        raise AssertionError("a built base must be reused, not rebuilt")

    assert ensure_tiny_base(first, no_posts, seed=3, config=quick) == first
    calls: list[int] = []

    def counted() -> list[tuple[str, str]]:
        calls.append(1)
        return pairs

    ensure_tiny_base(first, counted, seed=5, config=quick)  # another seed: rebuilt in place
    assert calls == [1]
    assert json.loads((first / "tiny.json").read_text())["seed"] == 5
