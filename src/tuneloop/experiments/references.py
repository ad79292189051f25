"""Model references of A/B tests and deployments, resolved within the tenant before use.

``MODEL@VERSION`` must name a version registered for the tenant, or a model that serving
is configured to reach (a ``serving.upstreams`` entry for ``MODEL@VERSION`` or ``MODEL``,
or a provider's model through the ``openai`` section when its key is set). An unversioned
``MODEL`` means the tenant's champion of that model (or, for a model tuneloop did not
train, its configured upstream). Anything else is refused with a 404 that says what exists,
so no live traffic is ever sent to a model that cannot answer.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Engine

from tuneloop.errors import InvalidInputError, NotFoundError
from tuneloop.store.models_registry import champion_of, versions_of

PROVIDER_VERSION = "1"  # the version label of a model tuneloop did not train


@dataclass(frozen=True)
class Servable:
    """What serving can reach besides the registry (from ``Settings``, as plain values)."""

    upstreams: Collection[str] = ()  # keys of serving.upstreams: MODEL or MODEL@VERSION
    provider: bool = False  # the openai section has a key: any provider model name answers


def parse_reference(text: str) -> tuple[str, str | None]:
    """``MODEL`` or ``MODEL@VERSION`` (model ids may contain ':'); the version may be None."""
    model_id, at, version = text.strip().rpartition("@")
    if not at:
        model_id, version = text.strip(), ""
    if not model_id.strip() or (at and not version.strip()):
        raise InvalidInputError(f"expected MODEL or MODEL@VERSION, got {text!r}")
    return model_id.strip(), version.strip() or None


def resolve_model(
    engine: Engine, tenant_id: str, model_id: str, version: str | None, servable: Servable
) -> tuple[str, str]:
    """``(model_id, version)`` that can serve, or ``NotFoundError`` saying what exists."""
    versions = versions_of(engine, tenant_id, model_id)
    if version is None:
        champion = champion_of(engine, tenant_id)
        if champion is not None and champion.model_id == model_id:
            return model_id, champion.version
        if not versions and (model_id in servable.upstreams or servable.provider):
            return model_id, PROVIDER_VERSION
        if versions:
            raise NotFoundError(
                f"{model_id} has no champion for tenant {tenant_id!r}: name a version "
                f"(registered: {', '.join(versions)})"
            )
        raise NotFoundError(_unknown(model_id, tenant_id))
    if version in versions:
        return model_id, version
    if f"{model_id}@{version}" in servable.upstreams:
        return model_id, version
    if not versions and (model_id in servable.upstreams or servable.provider):
        return model_id, version
    if versions:
        raise NotFoundError(
            f"{model_id} has no version {version} for tenant {tenant_id!r} "
            f"(registered: {', '.join(versions)})"
        )
    raise NotFoundError(_unknown(model_id, tenant_id))


def _unknown(model_id: str, tenant_id: str) -> str:
    return (
        f"no model {model_id!r} for tenant {tenant_id!r}: it is neither registered nor "
        "configured in serving.upstreams (see `tuneloop models list`)"
    )
