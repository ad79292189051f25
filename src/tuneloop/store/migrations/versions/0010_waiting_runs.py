"""A waiting run (A/B test or rollout in progress) is active: one active run per tenant.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BEFORE = sa.text("status IN ('pending', 'running', 'aborting')")
AFTER = sa.text("status IN ('pending', 'running', 'waiting', 'aborting')")


def _replace(where: sa.TextClause) -> None:
    op.drop_index("uq_pipeline_runs_active", table_name="pipeline_runs")
    op.create_index(
        "uq_pipeline_runs_active",
        "pipeline_runs",
        ["tenant_id"],
        unique=True,
        postgresql_where=where,
        sqlite_where=where,
    )


def upgrade() -> None:
    _replace(AFTER)


def downgrade() -> None:
    _replace(BEFORE)
