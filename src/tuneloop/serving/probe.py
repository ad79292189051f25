"""The deployment safety check "the model is reachable", for where the model is served.

A version served by a configured upstream (``serving.upstreams``: a provider or vLLM) is
reachable when that upstream answers a one-token chat completion for its model name; any
other version is probed by its MLflow artifact (``rollout.safety.ArtifactProbe``).
"""

from __future__ import annotations

import httpx

from tuneloop.config import Settings
from tuneloop.errors import TuneloopError
from tuneloop.rollout.safety import ModelProbe
from tuneloop.serving.targets import configured_upstream


class ServingProbe:
    def __init__(
        self,
        settings: Settings,
        fallback: ModelProbe,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.fallback = fallback
        self._transport = transport

    def probe(self, tenant_id: str, model_id: str, version: str) -> str:
        # Called for a version found in the tenant's registry (``check_reachable``).
        target = configured_upstream(self.settings, tenant_id, model_id, version, registered=True)
        if target is None:
            return self.fallback.probe(tenant_id, model_id, version)
        body = {
            "model": target.model,
            "messages": [{"role": "user", "content": "ping"}],
            "max_tokens": 1,
        }
        url = f"{target.base_url.rstrip('/')}/chat/completions"
        try:
            with httpx.Client(transport=self._transport, timeout=target.timeout_seconds) as http:
                response = http.post(url, json=body, headers=target.headers)
        except httpx.HTTPError as exc:
            raise TuneloopError(
                f"{target.base_url} could not be reached ({type(exc).__name__})"
            ) from exc
        if response.status_code >= 400:
            raise TuneloopError(
                f"{target.base_url} answered {response.status_code} for model {target.model!r}"
            )
        return f"{target.base_url} answered for model {target.model!r}"
