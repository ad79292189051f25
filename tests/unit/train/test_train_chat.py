"""Chat helpers that need no tokenizer: the fast ChatML render and reading JSONL files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneloop.errors import InvalidInputError
from tuneloop.train.chat import (
    CHATML_TEMPLATE,
    IGNORE,
    Encoded,
    has_generation_markers,
    read_messages,
    render_chatml,
)


def test_render_chatml_matches_the_template_layout() -> None:
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    assert render_chatml(messages) == (
        "<|im_start|>user\nHi<|im_end|><|im_start|>assistant\nHello<|im_end|>"
    )
    assert render_chatml(messages[:1], add_generation_prompt=True).endswith(
        "<|im_end|><|im_start|>assistant\n"
    )


def test_generation_markers_are_detected() -> None:
    assert has_generation_markers(CHATML_TEMPLATE)
    assert has_generation_markers("{%- generation %}x{% endgeneration %}")
    assert not has_generation_markers("{{ messages }}")
    assert not has_generation_markers(None)


def test_loss_tokens_count_labelled_positions() -> None:
    assert Encoded([1, 2, 3, 4], [IGNORE, IGNORE, 3, 4]).loss_tokens == 2


def test_read_messages_keeps_role_and_content(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(
        '{"messages":[{"role":"user","content":"a","name":"x"},'
        '{"role":"assistant","content":"b"}]}\n\n'
    )
    assert list(read_messages(path)) == [
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    ]
    assert list(read_messages(tmp_path / "missing.jsonl")) == []


def test_a_broken_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "validation.jsonl"
    path.write_text('{"messages":[{"role":"user","content":"a"}]}\n{"messages": [{"role": 1}]}\n')
    with pytest.raises(InvalidInputError, match=r"validation\.jsonl line 2"):
        list(read_messages(path))
