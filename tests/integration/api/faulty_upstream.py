"""An OpenAI-protocol upstream that fails a share of its calls at random, over real HTTP.

A bare ASGI app (no framework: it must not be the bottleneck of a few thousand calls) that
answers ``POST /v1/chat/completions`` with a ``chat.completion``, except for a share
``fault_rate`` of calls, spread evenly over five kinds of fault: 429 with ``Retry-After``,
500, 503, a hang (longer than the proxy's timeout) and garbage (200 with a body that is not a
completion). ``faults.down`` makes every call a 503 (an outage) until it is cleared.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import Any

FAULTS = ("429", "500", "503", "hang", "garbage")


@dataclass
class Faults:
    fault_rate: float = 0.3
    hang_s: float = 0.5
    down: bool = False
    seed: int = 7
    served: dict[str, int] = field(default_factory=dict)  # outcome -> calls

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def pick(self) -> str:
        if self.down:
            return "503"
        if self._random.random() < self.fault_rate:
            return self._random.choice(FAULTS)
        return "ok"


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def faulty_upstream(faults: Faults) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        outcome = faults.pick()
        faults.served[outcome] = faults.served.get(outcome, 0) + 1
        headers = [(b"content-type", b"application/json")]
        status, payload = 200, b""
        if outcome == "hang":
            await asyncio.sleep(faults.hang_s)
            status, payload = 504, b'{"error": {"message": "late"}}'
        elif outcome == "429":
            headers.append((b"retry-after", b"1"))
            status, payload = 429, b'{"error": {"message": "slow down", "type": "rate_limit"}}'
        elif outcome in ("500", "503"):
            status, payload = int(outcome), b'{"error": {"message": "broken", "type": "server"}}'
        elif outcome == "garbage":
            payload = b'{"error": "an HTML proxy page, or anything but a completion"}'
        else:
            payload = json.dumps(_completion(json.loads(body)["model"])).encode()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app
