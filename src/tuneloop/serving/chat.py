"""The OpenAI chat-completions wire format: the request as validated at the edge, and the
answers the local model server produces in the same shape as an upstream's.

Unknown request fields are kept and forwarded (an upstream may support more than we know);
the fields tuneloop reads are validated, so a bad request is a 422 before any model is asked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tuneloop.domain.text import StorableText
from tuneloop.train.generate import Generation

AUTO = "auto"  # the model name that asks tuneloop to route


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The text of the message (text parts of a multi-part content joined)."""
        if isinstance(self.content, str):
            return self.content
        if self.content is None:
            return ""
        return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = Field(default=False, strict=True)


class ChatCompletionRequest(StorableText):
    """``POST /v1/chat/completions``: OpenAI's request. ``model`` is ``"auto"`` (tuneloop
    routes the unit) or a registered ``MODEL@VERSION`` (pinned)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "model": "auto",
                    "messages": [{"role": "user", "content": "Create engaging content"}],
                    "user": "persona-42",
                    "max_tokens": 64,
                }
            ]
        },
    )

    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = Field(default=False, strict=True)
    stream_options: StreamOptions | None = None
    user: str | None = Field(
        default=None, min_length=1, max_length=128, description="The unit routed (sticky)."
    )
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(strict=True, default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(strict=True, default=None, gt=0.0, le=1.0)
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=128)

    @property
    def wants_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def upstream_body(self, model: str) -> dict[str, Any]:
        """What goes to an upstream: the request as sent, naming the upstream's model, and
        asking a stream for its usage (tokens are recorded; the client still gets the usage
        chunk only if it asked)."""
        body = self.model_dump(exclude_unset=True, exclude_none=True)
        body["model"] = model
        if self.stream:
            body["stream_options"] = {**body.get("stream_options", {}), "include_usage": True}
        return body


def usage(generation: Generation) -> dict[str, int]:
    return {
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "total_tokens": generation.prompt_tokens + generation.completion_tokens,
    }


def completion(generation: Generation, *, completion_id: str, model: str) -> dict[str, Any]:
    """A ``chat.completion`` object for a local generation."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": generation.text},
                "finish_reason": generation.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": usage(generation),
    }


def chunks(
    generation: Generation, *, completion_id: str, model: str, include_usage: bool
) -> Iterator[dict[str, Any]]:
    """A local generation as ``chat.completion.chunk`` objects: the role, the text a word at
    a time, the finish reason, then (when asked) the usage with no choices, as OpenAI does."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [choice],
        }

    yield chunk({"role": "assistant", "content": ""})
    words = generation.text.split(" ")
    for index, word in enumerate(words):
        yield chunk({"content": word if index == 0 else f" {word}"})
    yield chunk({}, generation.finish_reason)
    if include_usage:
        yield {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": usage(generation),
        }
