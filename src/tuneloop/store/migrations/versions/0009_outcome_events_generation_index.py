"""An index to find a tenant's generation by its id (outcomes inherit from it).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

GENERATION = sa.text("kind = 'generation'")


def upgrade() -> None:
    op.create_index(
        "ix_outcome_events_generation",
        "outcome_events",
        ["tenant_id", "generation_id"],
        postgresql_where=GENERATION,
        sqlite_where=GENERATION,
    )


def downgrade() -> None:
    op.drop_index("ix_outcome_events_generation", table_name="outcome_events")
