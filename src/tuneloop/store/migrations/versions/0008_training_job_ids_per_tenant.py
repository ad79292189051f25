"""Training job ids are unique per tenant, not across tenants.

A job id is ``<run id>-train`` and run ids count per tenant per day, so two tenants training
on the same day made the same job id; the global ``uq_training_jobs_id`` refused the second.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot drop a constraint in place (the table is copied there).
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_constraint("uq_training_jobs_id", type_="unique")
        batch.create_unique_constraint("uq_training_jobs_tenant_id_id", ["tenant_id", "id"])


def downgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_constraint("uq_training_jobs_tenant_id_id", type_="unique")
        batch.create_unique_constraint("uq_training_jobs_id", ["id"])
