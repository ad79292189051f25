"""Deployments (rollouts of model versions) and their audit trail.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tuneloop.store.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ACTIVE = sa.text("status IN ('rolling_out', 'promoting', 'rolling_back')")
STATUSES = "status IN ('rolling_out', 'promoting', 'completed', 'rolling_back', 'rolled_back')"
STRATEGIES = "strategy IN ('immediate', 'gradual_rollout', 'canary')"


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(256), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("previous_model_id", sa.String(256), nullable=False),
        sa.Column("previous_version", sa.String(64), nullable=False),
        sa.Column("ab_test_id", sa.String(64)),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("traffic", sa.Float(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("rollout_config", sa.JSON(), nullable=False),
        sa.Column("guardrails", sa.JSON(), nullable=False),
        sa.Column("rollback_plan", sa.JSON(), nullable=False),
        sa.Column("safety_checks", sa.JSON(), nullable=False),
        sa.Column("last_checks", sa.JSON()),
        sa.Column("last_reasons", sa.JSON()),
        sa.Column("reason", sa.Text()),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("step_started_at", UTCDateTime(), nullable=False),
        sa.Column("last_tick_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_deployments"),
        sa.CheckConstraint(STATUSES, name="ck_deployments_status"),
        sa.CheckConstraint(STRATEGIES, name="ck_deployments_strategy"),
        sa.CheckConstraint("traffic >= 0 AND traffic <= 1", name="ck_deployments_traffic"),
    )
    op.create_index(
        "uq_deployments_active",
        "deployments",
        ["tenant_id"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    op.create_index("ix_deployments_tenant_created", "deployments", ["tenant_id", "created_at"])
    op.create_table(
        "deployment_events",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("deployment_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("from_traffic", sa.Float(), nullable=False),
        sa.Column("to_traffic", sa.Float(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON()),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "deployment_id", "seq", name="pk_deployment_events"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "deployment_id"],
            ["deployments.tenant_id", "deployments.id"],
            name="fk_deployment_events_tenant_id_deployments",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("deployment_events")
    op.drop_index("ix_deployments_tenant_created", table_name="deployments")
    op.drop_index("uq_deployments_active", table_name="deployments")
    op.drop_table("deployments")
