"""Schema use cases for ``tuneloop db``: upgrade to a revision, and which ones are applied.

Every other entry point gets a migrated engine from the composition root
(``wiring.engine_for``); these are for the operator who migrates by hand.
"""

from __future__ import annotations

from tuneloop.config import Settings
from tuneloop.store.migrate import current_revisions, head_revisions, upgrade
from tuneloop.wiring import engine_for


def upgrade_schema(settings: Settings, revision: str = "heads") -> list[str]:
    """Apply migrations up to ``revision``; the revisions applied afterwards, sorted."""
    engine = engine_for(settings, migrate=False)
    upgrade(engine, revision)
    return sorted(current_revisions(engine))


def applied_revisions(settings: Settings) -> list[str]:
    """The revisions the database is at, sorted (empty before the first migration)."""
    return sorted(current_revisions(engine_for(settings, migrate=False)))


def newest_revisions() -> list[str]:
    """The heads of the migration scripts."""
    return sorted(head_revisions())
