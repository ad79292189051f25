"""Experiments and outcome events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tuneloop.store.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def opaque_id(length: int) -> sa.types.TypeEngine[str]:
    """Byte-compared ids on PostgreSQL (as in store.experiment_models, frozen here)."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    _create_experiments()
    _create_outcome_events()


def _create_experiments() -> None:
    op.create_table(
        "experiments",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("baseline_model_id", sa.String(256), nullable=False),
        sa.Column("baseline_version", sa.String(64), nullable=False),
        sa.Column("candidate_model_id", sa.String(256), nullable=False),
        sa.Column("candidate_version", sa.String(64), nullable=False),
        sa.Column("traffic_split", sa.Float(), nullable=False),
        sa.Column("arms", sa.JSON(), nullable=False),
        sa.Column("duration_hours", sa.Integer(), nullable=False),
        sa.Column("success_criteria", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("decision_reasons", sa.JSON(), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "key", name="pk_experiments"),
        sa.CheckConstraint(
            "status IN ('draft', 'running', 'stopped', 'decided')",
            name=op.f("ck_experiments_status"),
        ),
        sa.CheckConstraint(
            "traffic_split >= 0 AND traffic_split <= 1", name=op.f("ck_experiments_traffic_split")
        ),
    )
    op.create_index(
        "ix_experiments_tenant_status", "experiments", ["tenant_id", "status", "created_at"]
    )


def _create_outcome_events() -> None:
    op.create_table(
        "outcome_events",
        sa.Column("tenant_id", opaque_id(64), nullable=False),
        sa.Column("idempotency_key", opaque_id(128), nullable=False),
        sa.Column("experiment_key", opaque_id(64), nullable=True),
        sa.Column("unit_id", sa.String(128), nullable=False),
        sa.Column("arm", sa.String(64), nullable=True),
        sa.Column("model_id", sa.String(256), nullable=True),
        sa.Column("post_id", sa.String(128), nullable=True),
        sa.Column("generation_id", sa.String(128), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("engagement", sa.Float(), nullable=True),
        sa.Column("tokens", sa.Integer(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "idempotency_key", name="pk_outcome_events"),
        sa.CheckConstraint(
            "kind IN ('exposure', 'outcome', 'generation')", name=op.f("ck_outcome_events_kind")
        ),
    )
    op.create_index(
        "ix_outcome_events_experiment",
        "outcome_events",
        ["tenant_id", "experiment_key"],
    )


def downgrade() -> None:
    op.drop_index("ix_outcome_events_experiment", table_name="outcome_events")
    op.drop_table("outcome_events")
    op.drop_index("ix_experiments_tenant_status", table_name="experiments")
    op.drop_table("experiments")
