"""Chat examples to token ids and labels, with the loss on assistant tokens only.

Training and offline evaluation both go through :func:`encode_messages`, so they mask
the same way: labels are ``-100`` everywhere except on the assistant's tokens (its turn's
end-of-turn token included, so the model learns to stop).

* When the tokenizer's chat template marks assistant text with ``{% generation %}`` (the
  tiny base's :data:`CHATML_TEMPLATE` does), the mask is the template's own assistant mask,
  for every assistant turn.
* Otherwise the last message must be the assistant's: its tokens are those after the
  longest common prefix of the conversation and the prompt rendered with
  ``add_generation_prompt=True`` (what a model sees at inference).

Examples longer than ``max_length`` keep their start; one left with no assistant token is
dropped and counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneloop.errors import InvalidInputError

IGNORE = -100
Messages = list[dict[str, Any]]

IM_START, IM_END, PAD = "<|im_start|>", "<|im_end|>", "<|pad|>"

# ChatML with generation markers; the end-of-turn token is part of the assistant's span.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def render_chatml(
    messages: Sequence[dict[str, Any]], *, add_generation_prompt: bool = False
) -> str:
    """What :data:`CHATML_TEMPLATE` renders, without Jinja (fast path for pre-training)."""
    text = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}" for m in messages)
    return text + (f"{IM_START}assistant\n" if add_generation_prompt else "")


@dataclass(frozen=True)
class Encoded:
    """One tokenized example; ``labels`` is ``-100`` where no loss is taken."""

    input_ids: list[int]
    labels: list[int]

    @property
    def loss_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


@dataclass(frozen=True)
class EncodedSet:
    examples: list[Encoded]
    truncated: int  # examples cut to max_length (still kept)
    dropped: int  # examples left without an assistant token

    @property
    def tokens(self) -> int:
        return sum(len(e.input_ids) for e in self.examples)


def has_generation_markers(template: str | None) -> bool:
    return bool(template) and "{% generation %}" in str(template).replace("{%-", "{%")


def encode_messages(tokenizer: Any, messages: Messages, *, max_length: int) -> tuple[Encoded, bool]:
    """Token ids and assistant-only labels of one conversation, and whether it was cut."""
    if has_generation_markers(tokenizer.chat_template):
        out = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        ids = list(out["input_ids"])
        labels = [t if m else IGNORE for t, m in zip(ids, out["assistant_masks"], strict=True)]
    else:
        if not messages or messages[-1].get("role") != "assistant":
            raise InvalidInputError("an example must end with the assistant's message")
        prompt = tokenizer.apply_chat_template(
            messages[:-1], tokenize=True, return_dict=True, add_generation_prompt=True
        )["input_ids"]
        ids = list(
            tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
        )
        start = _common_prefix(prompt, ids)
        labels = [IGNORE] * start + ids[start:]
    cut = len(ids) > max_length
    return Encoded(ids[:max_length], labels[:max_length]), cut


def encode_file(tokenizer: Any, path: Path, *, max_length: int) -> EncodedSet:
    """Encode every example of an OpenAI chat JSONL file (missing file: empty set)."""
    examples: list[Encoded] = []
    truncated = dropped = 0
    for messages in read_messages(path):
        encoded, cut = encode_messages(tokenizer, messages, max_length=max_length)
        truncated += cut
        if encoded.loss_tokens == 0:
            dropped += 1
            continue
        examples.append(encoded)
    return EncodedSet(examples, truncated, dropped)


def read_messages(path: Path) -> Iterator[Messages]:
    """The ``messages`` of each line of a chat JSONL file; nothing when the file is absent."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                messages = [
                    {"role": m["role"], "content": m["content"]}
                    for m in json.loads(line)["messages"]
                ]
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInputError(f"{path.name} line {number}: not a chat example") from exc
            yield messages


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
