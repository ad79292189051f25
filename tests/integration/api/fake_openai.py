"""A stand-in for an OpenAI-compatible provider, served over real HTTP by uvicorn in a thread.

It speaks the chat-completions protocol as OpenAI documents it: bearer auth, a
``chat.completion`` body with ``usage``, and for ``stream: true`` server-sent
``chat.completion.chunk`` events ending in ``data: [DONE]``, with a usage chunk (no choices)
when ``stream_options.include_usage`` is set. The answer is ``"<model> says: <last user
message>"``, so a test can see which upstream model was asked. ``behaviour`` makes it fail
(``"error"``: 500 with an OpenAI error body) or slow down (``delay_s``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

API_KEY = "sk-upstream-test"


@dataclass
class Behaviour:
    error: bool = False
    delay_s: float = 0.0
    omit_done: bool = False  # end a complete stream without ``data: [DONE]``
    cut_after: int | None = None  # end a stream after this many words, unfinished
    malformed_after: int | None = None  # after this many words, send a line that is not JSON
    chunk_delay_s: float = 0.0  # pause before each streamed word
    requests: list[dict[str, Any]] = field(default_factory=list)


def fake_openai(behaviour: Behaviour) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return JSONResponse({"error": {"message": "bad key", "type": "auth"}}, 401)
        body = await request.json()
        behaviour.requests.append(body)
        if behaviour.delay_s:
            await asyncio.sleep(behaviour.delay_s)
        if behaviour.error:
            return JSONResponse(
                {"error": {"message": "the model is overloaded", "type": "server_error"}}, 500
            )
        question = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        words = f"{body['model']} says: {question}".split(" ")
        prompt_tokens = sum(len(str(m["content"]).split()) for m in body["messages"])
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(words),
            "total_tokens": prompt_tokens + len(words),
        }
        common = {"id": "chatcmpl-fake", "created": int(time.time()), "model": body["model"]}
        if not body.get("stream"):
            message = {"role": "assistant", "content": " ".join(words)}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return JSONResponse(
                {**common, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        async def events() -> AsyncIterator[bytes]:
            def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
                choice = {"index": 0, "delta": delta, "finish_reason": finish}
                payload = {**common, "object": "chat.completion.chunk", "choices": [choice]}
                return f"data: {json.dumps(payload)}\n\n".encode()

            yield chunk({"role": "assistant", "content": ""})
            for index, word in enumerate(words):
                if behaviour.cut_after is not None and index >= behaviour.cut_after:
                    return
                if behaviour.malformed_after is not None and index >= behaviour.malformed_after:
                    yield b"data: {not json\n\n"
                    return
                if behaviour.chunk_delay_s:
                    await asyncio.sleep(behaviour.chunk_delay_s)
                yield chunk({"content": word if index == 0 else f" {word}"})
            yield chunk({}, "stop")
            if include_usage:
                payload = {
                    **common,
                    "object": "chat.completion.chunk",
                    "choices": [],
                    "usage": usage,
                }
                yield f"data: {json.dumps(payload)}\n\n".encode()
            if not behaviour.omit_done:
                yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yields ``http://127.0.0.1:PORT``."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
