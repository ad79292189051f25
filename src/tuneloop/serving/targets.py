"""Where a model version is served: an OpenAI-compatible upstream, or the local model server.

Resolution, first match wins (documented in the README's configuration section):

1. ``serving.upstreams["MODEL@VERSION"]``, then ``serving.upstreams["MODEL"]`` — a provider or
   a vLLM server (for a vLLM LoRA adapter, ``model`` is the adapter's module name);
2. the local model server, when the version has a LoRA adapter and ``serving.local.enabled``
   (base ``"tiny"`` is the tenant's built-in tiny base in the workspace);
3. the ``openai`` section (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``), asked for ``MODEL``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tuneloop.config import Settings, UpstreamSettings
from tuneloop.rollout.checks import model_label
from tuneloop.serving.loaded import LocalModel
from tuneloop.store.pipeline_models import ModelVersion
from tuneloop.train.tiny import TINY, tiny_base_dir


@dataclass(frozen=True)
class UpstreamTarget:
    """An OpenAI-compatible ``/v1`` API and the name it knows the model by."""

    name: str  # the circuit breaker's name: "openai" for the openai section
    base_url: str
    api_key: str | None
    model: str
    timeout_seconds: float = 30.0
    input_price_per_million: float | None = None  # None: unknown (the openai section)
    output_price_per_million: float | None = None

    @property
    def headers(self) -> dict[str, str]:
        """What every request to it carries: the key as a bearer token, if there is one."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD for the call; None when the prices are not configured."""
        if self.input_price_per_million is None or self.output_price_per_million is None:
            return None
        return (
            prompt_tokens * self.input_price_per_million
            + completion_tokens * self.output_price_per_million
        ) / 1_000_000


@dataclass(frozen=True)
class LocalTarget:
    model: LocalModel
    # serving.local's prices: what a served token costs you (GPU time), for the cost criterion.
    input_price_per_million: float | None = None
    output_price_per_million: float | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD for the call; None (not 0.0) when the prices are not configured."""
        if self.input_price_per_million is None or self.output_price_per_million is None:
            return None
        return (
            prompt_tokens * self.input_price_per_million
            + completion_tokens * self.output_price_per_million
        ) / 1_000_000


Target = UpstreamTarget | LocalTarget


def configured_upstream(settings: Settings, model_id: str, version: str) -> UpstreamTarget | None:
    """The ``serving.upstreams`` entry for ``MODEL@VERSION`` or ``MODEL``, if there is one."""
    upstreams = settings.serving.upstreams
    for key in (model_label(model_id, version), model_id):
        if key in upstreams:
            return _upstream(f"upstream:{key}", upstreams[key], model_id)
    return None


def target_for(
    settings: Settings, tenant_id: str, model_id: str, version: str, row: ModelVersion | None
) -> Target:
    """Where ``MODEL@VERSION`` is served; ``row`` is its registry record (None: a model
    tuneloop did not train, e.g. a provider's base model in an experiment's baseline arm)."""
    upstream = configured_upstream(settings, model_id, version)
    if upstream is not None:
        return upstream
    if row is not None and row.adapter_path and settings.serving.local.enabled:
        base = row.base_model
        if base == TINY:
            base = str(tiny_base_dir(settings.workspace, tenant_id).resolve())
        local = settings.serving.local
        return LocalTarget(
            LocalModel(base_model=base, adapter_path=row.adapter_path),
            input_price_per_million=local.input_price_per_million,
            output_price_per_million=local.output_price_per_million,
        )
    key = settings.openai.api_key
    return UpstreamTarget(
        name="openai",
        base_url=settings.openai.base_url,
        api_key=key.get_secret_value() if key is not None else None,
        model=model_id,
    )


def _upstream(name: str, upstream: UpstreamSettings, model_id: str) -> UpstreamTarget:
    key = upstream.api_key
    return UpstreamTarget(
        name=name,
        base_url=upstream.base_url,
        api_key=key.get_secret_value() if key is not None else None,
        model=upstream.model or model_id,
        timeout_seconds=upstream.timeout_seconds,
        input_price_per_million=upstream.input_price_per_million,
        output_price_per_million=upstream.output_price_per_million,
    )
