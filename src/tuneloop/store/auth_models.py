"""API keys: the ``api_keys`` table and the repository that issues and checks keys.

A key reads ``tl_<id>_<secret>``: ``id`` (12 hex characters) is visible and names the row,
``secret`` carries 256 random bits. Only the sha256 of the whole key is stored, so a leaked
table grants nothing; a fast hash is enough because the secret is random, not a password.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, Index, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from tuneloop.domain.keys import KEY_PREFIX, Role, hash_key, key_id_of
from tuneloop.errors import InvalidStateError, NotFoundError
from tuneloop.store.base import Base
from tuneloop.store.types import utcnow

__all__ = [
    "KEY_PREFIX",
    "ApiKey",
    "IssuedKey",
    "Role",
    "api_key_is_active",
    "create_api_key",
    "hash_key",
    "key_id_of",
    "list_api_keys",
    "revoke_api_key",
    "verify_api_key",
]


class ApiKey(Base):
    """One issued key: its tenant, its role, and the hash of the key itself."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_tenant_id", "tenant_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the visible key id
    tenant_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(128))
    key_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the whole key
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


@dataclass(frozen=True)
class IssuedKey:
    """A new key: the row, and the plaintext that is shown once and never stored."""

    record: ApiKey
    plaintext: str


def create_api_key(
    engine: Engine, tenant_id: str, *, role: Role, name: str | None = None
) -> IssuedKey:
    key_id = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKey(
        id=key_id,
        tenant_id=tenant_id,
        role=Role(role).value,
        name=name,
        key_hash=hash_key(plaintext),
        created_at=utcnow(),
    )
    with Session(engine, expire_on_commit=False) as session, session.begin():
        session.add(record)
    return IssuedKey(record=record, plaintext=plaintext)


def list_api_keys(engine: Engine, tenant_id: str) -> Sequence[ApiKey]:
    statement = (
        select(ApiKey)
        .where(ApiKey.tenant_id == tenant_id)
        .order_by(ApiKey.created_at.desc(), ApiKey.id)
    )
    with Session(engine, expire_on_commit=False) as session:
        return session.scalars(statement).all()


def revoke_api_key(
    engine: Engine, tenant_id: str, key_id: str, *, actor_key_id: str | None = None
) -> ApiKey:
    """Revoke a key of this tenant; revoking twice keeps the first time. Others' keys: 404.

    An admin key cannot revoke itself (``actor_key_id``: the key making the call), and a
    tenant keeps at least one active admin key (``InvalidStateError``, a 409)."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        record = session.get(ApiKey, key_id, with_for_update=True)
        if record is None or record.tenant_id != tenant_id:
            raise NotFoundError(f"API key {key_id!r} not found")
        if record.revoked_at is not None:
            return record
        if key_id == actor_key_id:
            raise InvalidStateError("a key cannot revoke itself: use another admin key")
        if record.role == Role.ADMIN and not _other_admins(session, tenant_id, key_id):
            raise InvalidStateError(
                "this is the tenant's last active admin key: create another admin key first"
            )
        record.revoked_at = utcnow()
        return record


def api_key_is_active(engine: Engine, tenant_id: str, key_id: str, role: str) -> bool:
    """The key exists in this tenant with this role and is not revoked (a session's check)."""
    with Session(engine) as session:
        record = session.get(ApiKey, key_id)
        return (
            record is not None
            and record.tenant_id == tenant_id
            and record.role == role
            and record.revoked_at is None
        )


def _other_admins(session: Session, tenant_id: str, key_id: str) -> bool:
    statement = select(ApiKey.id).where(
        ApiKey.tenant_id == tenant_id,
        ApiKey.role == Role.ADMIN.value,
        ApiKey.revoked_at.is_(None),
        ApiKey.id != key_id,
    )
    return session.scalars(statement.limit(1)).first() is not None


def verify_api_key(engine: Engine, plaintext: str) -> ApiKey | None:
    """The active key matching ``plaintext``, or None (unknown, malformed or revoked)."""
    key_id = key_id_of(plaintext)
    if key_id is None:
        return None
    with Session(engine, expire_on_commit=False) as session:
        record = session.get(ApiKey, key_id)
    if record is None or record.revoked_at is not None:
        return None
    return record if hmac.compare_digest(record.key_hash, hash_key(plaintext)) else None
