"""Tenant ownership of the models an experiment or deployment names: never another tenant's.

A model reference is the caller's when the version is in the caller's registry, or when a
``serving.upstreams`` entry serves the caller (``shared``, or the caller's ``tenant``). It is
refused — as "not found", so the answer says nothing about other tenants — when it names a
model registered in another tenant or an upstream entry that belongs to another tenant. Any
other name is a provider's model (served by the ``openai`` section), as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Engine

from tuneloop.config import UpstreamSettings
from tuneloop.errors import NotFoundError
from tuneloop.store.models_registry import model_registered_by_others, version_registered


def check_tenant_models(
    engine: Engine,
    tenant_id: str,
    refs: Iterable[tuple[str, str]],
    *,
    upstreams: Mapping[str, UpstreamSettings] | None = None,
) -> None:
    """Raise ``NotFoundError`` for the first ``(model_id, version)`` the tenant may not use."""
    for model_id, version in refs:
        if version_registered(engine, tenant_id, model_id, version):
            continue
        entries = [
            entry
            for key in (f"{model_id}@{version}", model_id)
            if (entry := (upstreams or {}).get(key)) is not None
        ]
        if any(entry.serves(tenant_id, registered=False) for entry in entries):
            continue
        if entries or model_registered_by_others(engine, tenant_id, model_id):
            raise NotFoundError(f"model {model_id}@{version} not found in this tenant")
