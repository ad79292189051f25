"""Helpers shared by the API tests: keys per role, auth headers, settings tweaks, rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tuneloop.config import ApiSettings, Settings
from tuneloop.store.models import DatasetVersion

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256!"
TENANT_A, TENANT_B = "acme", "globex"


@dataclass(frozen=True)
class Keys:
    """Plaintext keys: one per role in tenant A, and an admin in tenant B."""

    admin: str
    operator: str
    viewer: str
    other_admin: str

    def of(self, role: str) -> str:
        return {"admin": self.admin, "operator": self.operator, "viewer": self.viewer}[role]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def with_api(settings: Settings, **api: Any) -> Settings:
    """A copy of ``settings`` with some ``api`` settings changed (and validated)."""
    changed = ApiSettings.model_validate(settings.api.model_dump() | api)
    return settings.model_copy(update={"api": changed})


def post(post_id: str, **fields: Any) -> dict[str, Any]:
    """A valid post as a client sends it."""
    return {
        "id": post_id,
        "hook": f"hook {post_id}",
        "body": f"body {post_id}",
        "ts": "2025-01-02T09:30:00Z",
        "engagement_rate": 0.08,
    } | fields


def add_dataset(
    engine: Engine,
    tenant_id: str,
    version: str | None = None,
    *,
    created_at: datetime | None = None,
) -> str:
    """Record a dataset version row directly (building one is the collector's business)."""
    version = version or uuid.uuid4().hex + uuid.uuid4().hex
    row = DatasetVersion(
        tenant_id=tenant_id,
        id=version,
        persona_id=None,
        path=f"/data/{version}",
        source_records=10,
        hook_examples=10,
        body_examples=10,
        train_examples=18,
        validation_examples=2,
        total_tokens=1234,
        manifest={"format": "openai-chat-jsonl", "content_hash": version},
        created_at=created_at or datetime.now(UTC),
    )
    with Session(engine) as session, session.begin():
        session.add(row)
    return version


def caught_up(app: Any) -> None:
    """Wait until the app's in-process consumer has written every accepted event."""
    consumer = app.state.resources.consumer
    assert consumer is not None and consumer.catch_up(timeout=20), "events still waiting"
