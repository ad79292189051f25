"""OpenAI's published rules for chat fine-tuning examples, as a function returning reasons.

Follows the checks of OpenAI's "data preparation and analysis for chat model fine-tuning"
guide: an object with a ``messages`` list; each message has a known role and string content;
only known keys; at least one assistant message; and a per-example token limit.
"""

from __future__ import annotations

from typing import Any

ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer"})
MESSAGE_KEYS = frozenset(
    {"role", "content", "name", "function_call", "tool_calls", "weight", "tool_call_id"}
)


def problems_of(record: Any, *, tokens: int, max_tokens: int) -> list[str]:
    """Every rule ``record`` breaks (empty when it is a valid example)."""
    if not isinstance(record, dict):
        return ["data_type: an example must be a JSON object"]
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["missing_messages_list: 'messages' must be a non-empty list"]
    reasons: list[str] = []
    for index, message in enumerate(messages):
        reasons.extend(_message_problems(index, message))
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        reasons.append("example_missing_assistant_message: no assistant message")
    if tokens > max_tokens:
        reasons.append(f"too_many_tokens: {tokens} tokens, the limit is {max_tokens}")
    return reasons


def _message_problems(index: int, message: Any) -> list[str]:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        return [f"data_type: {where} must be an object"]
    reasons = []
    if "role" not in message or ("content" not in message and "tool_calls" not in message):
        reasons.append(f"message_missing_key: {where} needs 'role' and 'content'")
    unknown = sorted(set(message) - MESSAGE_KEYS)
    if unknown:
        reasons.append(f"message_unrecognized_key: {where} has {', '.join(unknown)}")
    if message.get("role") not in ROLES:
        reasons.append(f"unrecognized_role: {where} role {message.get('role')!r}")
    content = message.get("content")
    if "tool_calls" not in message and (not isinstance(content, str) or not content.strip()):
        reasons.append(f"missing_content: {where} has no text content")
    return reasons
