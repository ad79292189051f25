"""The app's handle on the local model server: created on first need, warmed at start.

Torch loads only when a locally served model exists: at start, the warm-up list holds every
locally served version that can get traffic (each tenant's champion, the new and previous
model of each active rollout, each running experiment's arms). Readiness stays false until
they are loaded and have generated once; with nothing to warm the app is ready at once and the
server starts on the first request for a local model.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from tuneloop.config import LocalServingSettings
from tuneloop.serving.chat import ChatCompletionRequest
from tuneloop.serving.loaded import LocalModel
from tuneloop.train.generate import Generation

if TYPE_CHECKING:
    from tuneloop.serving.local import LocalModelServer

log = logging.getLogger(__name__)


class LocalServing:
    def __init__(self, settings: LocalServingSettings) -> None:
        self.settings = settings
        self._server: LocalModelServer | None = None
        self._warming: asyncio.Task[None] | None = None
        self._warm_failed: str | None = None

    @property
    def ready(self) -> bool:
        """Warm-up (if any) finished and succeeded; models loaded on demand later do not
        make the process unready."""
        if self._warm_failed is not None:
            return False
        return self._warming is None or self._warming.done()

    @property
    def problem(self) -> str | None:
        """Why warm-up failed, if it did."""
        return self._warm_failed

    def _the_server(self) -> LocalModelServer:
        if self._server is None:
            from tuneloop.serving.local import LocalModelServer

            self._server = LocalModelServer(self.settings)
        return self._server

    def start(self, warm: list[LocalModel]) -> None:
        """Begin warming ``warm`` in the background (readiness false until done)."""
        if not self.settings.enabled or not warm or not self.settings.warmup:
            return
        server = self._the_server()
        self._warming = asyncio.get_running_loop().create_task(self._warm(server, warm))

    async def _warm(self, server: LocalModelServer, warm: list[LocalModel]) -> None:
        names = ", ".join(m.adapter_path or m.base_model for m in warm)
        log.info("warming %d local models: %s", len(warm), names)
        try:
            await server.start(warm)
        except Exception as exc:
            self._warm_failed = f"{type(exc).__name__}: {exc}"
            log.exception("local model warm-up failed; /health/ready stays false")
        else:
            log.info("local models warm")

    async def generate(self, model: LocalModel, request: ChatCompletionRequest) -> Generation:
        cap = self.settings.max_new_tokens
        messages = [{"role": m.role, "content": m.text()} for m in request.messages]
        return await self._the_server().generate(
            model,
            messages,
            max_tokens=min(request.token_limit or cap, cap),
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=1.0 if request.top_p is None else request.top_p,
            seed=request.seed,
        )

    async def aclose(self) -> None:
        if self._warming is not None and not self._warming.done():
            self._warming.cancel()
        if self._server is not None:
            await self._server.aclose()
