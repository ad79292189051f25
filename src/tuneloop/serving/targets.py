"""Where a model version is served: an OpenAI-compatible upstream, or the local model server.

Resolution, first match wins (documented in the README's configuration section):

1. ``serving.upstreams["MODEL@VERSION"]``, then ``serving.upstreams["MODEL"]`` — a provider or
   a vLLM server (for a vLLM LoRA adapter, ``model`` is the adapter's module name) — when the
   entry serves the caller's tenant (``UpstreamSettings.serves``: ``shared``, its ``tenant``,
   or, untenanted, a version the tenant registered): another tenant's entry is never used;
2. a hosted fine-tune (trained by ``training.backend = "openai"``): the ``openai`` section,
   asked for the provider's name of it (``ft:...``, the version's ``served_model``);
3. the local model server, when the version has a LoRA adapter and ``serving.local.enabled``
   (base ``"tiny"`` is the tenant's built-in tiny base in the workspace);
4. the ``openai`` section (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``), asked for ``MODEL``.
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
    fallback: str | None = None  # MODEL@VERSION to serve while this upstream's breaker is open
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


def configured_upstream(
    settings: Settings, tenant_id: str, model_id: str, version: str, *, registered: bool
) -> UpstreamTarget | None:
    """The ``serving.upstreams`` entry for ``MODEL@VERSION`` or ``MODEL`` that serves
    ``tenant_id`` (``registered``: the tenant has this version in its registry), if any."""
    upstreams = settings.serving.upstreams
    for key in (model_label(model_id, version), model_id):
        entry = upstreams.get(key)
        if entry is not None and entry.serves(tenant_id, registered=registered):
            return _upstream(f"upstream:{key}", entry, model_id)
    return None


def target_for(
    settings: Settings, tenant_id: str, model_id: str, version: str, row: ModelVersion | None
) -> Target:
    """Where ``MODEL@VERSION`` is served; ``row`` is its registry record (None: a model
    tuneloop did not train, e.g. a provider's base model in an experiment's baseline arm)."""
    upstream = configured_upstream(
        settings, tenant_id, model_id, version, registered=row is not None
    )
    if upstream is not None:
        return upstream
    if row is not None and row.served_model:  # a hosted fine-tune, at its provider
        return _openai_section(settings, row.served_model)
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
    return _openai_section(settings, model_id)


def _openai_section(settings: Settings, model: str) -> UpstreamTarget:
    key = settings.openai.api_key
    return UpstreamTarget(
        name="openai",
        base_url=settings.openai.base_url,
        api_key=key.get_secret_value() if key is not None else None,
        model=model,
    )


def _upstream(name: str, upstream: UpstreamSettings, model_id: str) -> UpstreamTarget:
    key = upstream.api_key
    return UpstreamTarget(
        name=name,
        base_url=upstream.base_url,
        api_key=key.get_secret_value() if key is not None else None,
        model=upstream.model or model_id,
        timeout_seconds=upstream.timeout_seconds,
        fallback=upstream.fallback,
        input_price_per_million=upstream.input_price_per_million,
        output_price_per_million=upstream.output_price_per_million,
    )
