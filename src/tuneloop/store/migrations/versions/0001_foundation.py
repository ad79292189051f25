"""Foundation: posts, dataset versions, collection watermarks.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tuneloop.store.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("persona_id", sa.String(128), nullable=True),
        sa.Column("hook", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("engagement_rate", sa.Float(), nullable=True),
        sa.Column("impressions", sa.Integer(), nullable=True),
        sa.Column("engagements", sa.Integer(), nullable=True),
        sa.Column("tokens_used", sa.Integer(), nullable=True),
        sa.Column("model_id", sa.String(256), nullable=True),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_posts"),
    )
    op.create_index("ix_posts_collect", "posts", ["tenant_id", "engagement_rate", "ts"])
    op.create_index("ix_posts_tenant_ts", "posts", ["tenant_id", "ts"])
    op.create_table(
        "dataset_versions",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("persona_id", sa.String(128), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("source_records", sa.Integer(), nullable=False),
        sa.Column("hook_examples", sa.Integer(), nullable=False),
        sa.Column("body_examples", sa.Integer(), nullable=False),
        sa.Column("train_examples", sa.Integer(), nullable=False),
        sa.Column("validation_examples", sa.Integer(), nullable=False),
        sa.Column("total_tokens", sa.Integer(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_dataset_versions"),
    )
    op.create_table(
        "collection_watermarks",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(160), nullable=False),
        sa.Column("last_ts", UTCDateTime(), nullable=True),
        sa.Column("collected_at", UTCDateTime(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "scope", name="pk_collection_watermarks"),
    )


def downgrade() -> None:
    op.drop_table("collection_watermarks")
    op.drop_table("dataset_versions")
    op.drop_index("ix_posts_tenant_ts", table_name="posts")
    op.drop_index("ix_posts_collect", table_name="posts")
    op.drop_table("posts")
