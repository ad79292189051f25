"""Turns one post into its two training examples: a hook example and a body example."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tuneloop.domain.posts import CollectedPost

ExampleKind = Literal["hook", "body"]


@dataclass(frozen=True)
class Prompts:
    hook_prompt: str = "Create engaging content"
    body_prompt_suffix: str = "\n\nWrite a detailed post:"
    system_prompt: str | None = None


@dataclass(frozen=True)
class Example:
    """One chat example, with where it came from (kept out of the uploaded JSONL)."""

    kind: ExampleKind
    post_id: str
    persona_id: str | None
    engagement_rate: float
    record: dict[str, Any]  # {"messages": [...]}: exactly what goes into the JSONL line


def examples_for(post: CollectedPost, prompts: Prompts) -> tuple[Example, Example]:
    """The source design's pair: hook from a fixed prompt, body from the hook."""
    hook_messages = [
        {"role": "user", "content": prompts.hook_prompt},
        {"role": "assistant", "content": post.hook},
    ]
    body_messages = [
        {"role": "user", "content": post.hook + prompts.body_prompt_suffix},
        {"role": "assistant", "content": post.body},
    ]
    if prompts.system_prompt:
        system = {"role": "system", "content": prompts.system_prompt}
        hook_messages.insert(0, system)
        body_messages.insert(0, system)

    def example(kind: ExampleKind, messages: list[dict[str, str]]) -> Example:
        return Example(
            kind=kind,
            post_id=post.id,
            persona_id=post.persona_id,
            engagement_rate=post.engagement_rate,
            record={"messages": messages},
        )

    return example("hook", hook_messages), example("body", body_messages)
