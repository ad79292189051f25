"""posts.source_model / source_version / generation_id: which model version wrote a post.

NULL for a post of unknown origin (written by a person, or imported without a model
reference). The dataset builder reports and caps the share of each source version
(docs/decisions/0021-feedback-loop-safeguards.md).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("source_model", sa.String(200), nullable=True))
        batch.add_column(sa.Column("source_version", sa.String(32), nullable=True))
        batch.add_column(sa.Column("generation_id", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("generation_id")
        batch.drop_column("source_version")
        batch.drop_column("source_model")
