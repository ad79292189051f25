"""OpenAI's chat fine-tuning rules, one by one."""

from __future__ import annotations

from typing import Any

import pytest

from tuneloop.dataset.tokens import approximate_tokens, count_example_tokens
from tuneloop.dataset.validate import problems_of

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def codes(record: Any, tokens: int = 10, max_tokens: int = 100) -> list[str]:
    return [p.split(":", 1)[0] for p in problems_of(record, tokens=tokens, max_tokens=max_tokens)]


def test_a_good_example_passes() -> None:
    assert codes(GOOD) == []


@pytest.mark.parametrize(
    ("record", "code"),
    [
        ([], "data_type"),
        ({}, "missing_messages_list"),
        ({"messages": []}, "missing_messages_list"),
        ({"messages": [{"role": "user", "content": "x"}]}, "example_missing_assistant_message"),
        (
            {
                "messages": [
                    {"role": "robot", "content": "x"},
                    {"role": "assistant", "content": "y"},
                ]
            },
            "unrecognized_role",
        ),
        (
            {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "y"}]},
            "missing_content",
        ),
        (
            {"messages": [{"role": "user"}, {"role": "assistant", "content": "y"}]},
            "message_missing_key",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "x", "mood": 1},
                    {"role": "assistant", "content": "y"},
                ]
            },
            "message_unrecognized_key",
        ),
    ],
)
def test_each_rule_is_reported(record: Any, code: str) -> None:
    assert code in codes(record)


def test_token_limit() -> None:
    assert codes(GOOD, tokens=101, max_tokens=100) == ["too_many_tokens"]


def test_token_count_follows_the_cookbook_overheads() -> None:
    # Like the cookbook, role values count too. 3 priming + 2 messages x 3 overhead
    # + "user" (1) + "hi" (1) + "assistant" (9 chars: 1 + 8//4 = 3) + "hello" (1 + 4//4 = 2)
    assert count_example_tokens(GOOD) == 3 + 6 + 1 + 1 + 3 + 2
    assert approximate_tokens("Hello, world!") == 1 + 1 + 1 + 1 + 1 + 1  # Hello , world !
