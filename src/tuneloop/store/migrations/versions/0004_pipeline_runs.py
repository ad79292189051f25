"""Pipeline runs, steps, training jobs, model versions; joins the 0002 and 0003 heads.

Revision ID: 0004
Revises: 0002, 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tuneloop.store.types import UTCDateTime

revision = "0004"
down_revision = ("0002", "0003")
branch_labels = None
depends_on = None

ACTIVE = sa.text("status IN ('pending', 'running', 'aborting')")
RUN_FK = (["tenant_id", "run_id"], ["pipeline_runs.tenant_id", "pipeline_runs.id"])


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("current_step", sa.String(32)),
        sa.Column("error", sa.Text()),
        sa.Column("lease_owner", sa.String(200)),
        sa.Column("heartbeat_at", UTCDateTime()),
        sa.Column("abort_requested", sa.Boolean(), nullable=False),
        sa.Column("abort_reason", sa.String(200)),
        sa.Column("cleanup", sa.JSON()),
        sa.Column("dataset_id", sa.String(64)),
        sa.Column("mlflow_run_id", sa.String(64)),
        sa.Column("model_version", sa.String(32)),
        sa.Column("memory_initial_mb", sa.Float()),
        sa.Column("memory_peak_mb", sa.Float()),
        sa.Column("memory_final_mb", sa.Float()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_pipeline_runs"),
    )
    op.create_index(
        "uq_pipeline_runs_active",
        "pipeline_runs",
        ["tenant_id"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    op.create_index("ix_pipeline_runs_tenant_created", "pipeline_runs", ["tenant_id", "created_at"])
    op.create_table(
        "pipeline_steps",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("output", sa.JSON()),
        sa.Column("error", sa.Text()),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("tenant_id", "run_id", "name", name="pk_pipeline_steps"),
        sa.ForeignKeyConstraint(
            *RUN_FK, name="fk_pipeline_steps_tenant_id_pipeline_runs", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "training_jobs",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(128)),
        sa.Column("base_model", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("output_dir", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("hyperparameters", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("tenant_id", "run_id", name="pk_training_jobs"),
        sa.UniqueConstraint("id", name="uq_training_jobs_id"),
        sa.ForeignKeyConstraint(
            *RUN_FK, name="fk_training_jobs_tenant_id_pipeline_runs", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "model_versions",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("training_job_id", sa.String(64)),
        sa.Column("dataset_id", sa.String(64)),
        sa.Column("base_model", sa.Text(), nullable=False),
        sa.Column("adapter_path", sa.Text()),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("metrics", sa.JSON()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "model_id", "version", name="pk_model_versions"),
    )


def downgrade() -> None:
    op.drop_table("model_versions")
    op.drop_table("training_jobs")
    op.drop_table("pipeline_steps")
    op.drop_index("ix_pipeline_runs_tenant_created", table_name="pipeline_runs")
    op.drop_index("uq_pipeline_runs_active", table_name="pipeline_runs")
    op.drop_table("pipeline_runs")
