"""``/keys``: admins create, list and revoke their own tenant's API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from tuneloop.api.auth import Admin
from tuneloop.api.resources import ResourcesDep
from tuneloop.api.revocation import publish_revocation
from tuneloop.api.schemas.common import AUTHENTICATED_RESPONSES, BODY_RESPONSES
from tuneloop.api.schemas.keys import KeyCreate, KeyCreated, KeyList, KeyRevoked
from tuneloop.app import keys

router = APIRouter(prefix="/keys", tags=["keys"], responses=AUTHENTICATED_RESPONSES)
KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="The key's visible id.")]


@router.post("", status_code=201, responses=BODY_RESPONSES, summary="Create an API key")
def create_key(body: KeyCreate, principal: Admin, resources: ResourcesDep) -> KeyCreated:
    """The key is in this answer only; it is stored as a hash and cannot be shown again."""
    issued = keys.create_key(resources.engine, principal.tenant_id, role=body.role, name=body.name)
    return KeyCreated.of(issued)


@router.get("", summary="List the tenant's API keys (never the keys themselves)")
def list_keys(principal: Admin, resources: ResourcesDep) -> KeyList:
    return KeyList.of(list(keys.list_keys(resources.engine, principal.tenant_id)))


@router.delete("/{key_id}", summary="Revoke an API key")
def revoke_key(key_id: KeyId, principal: Admin, resources: ResourcesDep) -> KeyRevoked:
    """This process refuses the key at once; other worker processes within
    `other_workers_may_accept_for_seconds` (0 with Redis: the revocation is shared). A key
    cannot revoke itself, and a tenant keeps at least one admin key (409)."""
    actor = principal.subject if principal.method == "api_key" else None
    record = keys.revoke_key(resources.engine, principal.tenant_id, key_id, actor_key_id=actor)
    resources.keys.clear()  # this process stops accepting it now
    cache_seconds = resources.settings.api.key_cache_seconds
    shared = publish_revocation(resources.redis, key_id, cache_seconds=cache_seconds)
    return KeyRevoked.of(record, delay=0.0 if shared else cache_seconds)
