"""API key use cases: issue, list, revoke, and check a presented key.

``tuneloop keys``, ``/keys``, the API's authentication and the dashboard's session check
call these; the rows and their hashing live in ``tuneloop.store.auth_models``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from tuneloop.domain.keys import KEY_PREFIX, Role, hash_key
from tuneloop.store.auth_models import (
    ApiKey,
    IssuedKey,
    api_key_is_active,
    create_api_key,
    list_api_keys,
    revoke_api_key,
    verify_api_key,
)

__all__ = [
    "KEY_PREFIX",
    "ApiKey",
    "IssuedKey",
    "Role",
    "create_key",
    "hash_key",
    "key_is_active",
    "list_keys",
    "revoke_key",
    "verify_key",
]


def create_key(engine: Engine, tenant: str, *, role: Role, name: str | None = None) -> IssuedKey:
    """A new key; its plaintext is in the answer only (the store keeps its hash)."""
    return create_api_key(engine, tenant, role=role, name=name)


def list_keys(engine: Engine, tenant: str) -> Sequence[ApiKey]:
    return list_api_keys(engine, tenant)


def revoke_key(
    engine: Engine, tenant: str, key_id: str, *, actor_key_id: str | None = None
) -> ApiKey:
    """Revoke a key of ``tenant`` (idempotent); a key cannot revoke itself, and a tenant
    keeps at least one admin key (InvalidStateError)."""
    return revoke_api_key(engine, tenant, key_id, actor_key_id=actor_key_id)


def verify_key(engine: Engine, presented: str) -> ApiKey | None:
    """The active key matching ``presented``, or None (unknown, malformed or revoked)."""
    return verify_api_key(engine, presented)


def key_is_active(engine: Engine, tenant: str, key_id: str, role: str) -> bool:
    """The key exists in ``tenant`` with ``role`` and is not revoked (a session's check)."""
    return api_key_is_active(engine, tenant, key_id, role)
