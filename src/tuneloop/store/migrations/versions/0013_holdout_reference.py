"""holdout_references: each tenant's pinned reference model (its first champion).

The permanent holdout is served this model for good, so its engagement against everyone
else's measures the cumulative effect of every promotion since. Tenants that already have
a champion take it as their reference (the earliest one still known).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tuneloop.store.types import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holdout_references",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("pinned_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_holdout_references"),
    )
    op.execute(
        "INSERT INTO holdout_references (tenant_id, model_id, version, pinned_at) "
        "SELECT tenant_id, model_id, version, created_at FROM model_versions "
        "WHERE status = 'champion'"
    )


def downgrade() -> None:
    op.drop_table("holdout_references")
