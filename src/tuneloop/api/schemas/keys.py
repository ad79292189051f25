"""API keys over HTTP: create (the key is shown once), list, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tuneloop.app.keys import ApiKey, IssuedKey, Role
from tuneloop.domain.text import StorableText

_EXAMPLE: dict[str, Any] = {
    "id": "8c1f0a2b3d4e",
    "tenant_id": "acme",
    "role": "operator",
    "name": "ci-pipeline",
    "created_at": "2025-01-02T09:00:00Z",
    "revoked_at": None,
}


class KeyCreate(StorableText):
    """A key for the caller's own tenant."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"role": "operator", "name": "ci-pipeline"}]},
    )

    role: Role = Field(
        description="viewer reads; operator also writes and operates; admin also manages keys."
    )
    name: str | None = Field(default=None, max_length=128, description="A label for people.")


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_EXAMPLE]})

    id: str = Field(description="The key's visible id (the part after `tl_`).")
    tenant_id: str
    role: Role
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    model_config = ConfigDict(
        json_schema_extra={"examples": [_EXAMPLE | {"key": "tl_8c1f0a2b3d4e_Zq3...redacted"}]}
    )

    key: str = Field(description="The key itself. Shown only in this answer; store it now.")

    @classmethod
    def of(cls, issued: IssuedKey) -> KeyCreated:
        return cls(**KeyOut.model_validate(issued.record).model_dump(), key=issued.plaintext)


class KeyList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_EXAMPLE]}]})

    items: list[KeyOut]

    @classmethod
    def of(cls, rows: list[ApiKey]) -> KeyList:
        return cls(items=[KeyOut.model_validate(row) for row in rows])


class KeyRevoked(KeyOut):
    other_workers_may_accept_for_seconds: float = Field(
        description="How long other worker processes may still accept the key (their key "
        "cache, `api.key_cache_seconds`); 0 when Redis shares the revocation at once."
    )

    @classmethod
    def of(cls, row: ApiKey, *, delay: float) -> KeyRevoked:
        return cls(
            **KeyOut.model_validate(row).model_dump(), other_workers_may_accept_for_seconds=delay
        )
