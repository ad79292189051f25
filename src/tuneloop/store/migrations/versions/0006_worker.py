"""The worker: its leader lease, claimed schedule fires, per-tenant schedules.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tuneloop.store.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", UTCDateTime(), nullable=False),
        sa.Column("renewed_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("last_tick_at", UTCDateTime()),
        sa.Column("last_tick", sa.JSON()),
        sa.PrimaryKeyConstraint("name", name="pk_worker_leases"),
    )
    op.create_table(
        "schedule_fires",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("fire_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.PrimaryKeyConstraint("tenant_id", "fire_at", name="pk_schedule_fires"),
    )
    op.create_table(
        "tenant_schedules",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("cron", sa.String(120)),
        sa.Column("anchor_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_tenant_schedules"),
    )


def downgrade() -> None:
    op.drop_table("tenant_schedules")
    op.drop_table("schedule_fires")
    op.drop_table("worker_leases")
