"""Pipeline runs, their steps, training jobs and model versions: the durable state machine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tuneloop.store.base import Base
from tuneloop.store.types import utcnow

ACTIVE_SQL = "status IN ('pending', 'running', 'waiting', 'aborting')"


class PipelineRun(Base):
    __tablename__ = "pipeline_runs"
    __table_args__ = (
        # At most one active run per tenant, enforced by the database itself.
        Index(
            "uq_pipeline_runs_active",
            "tenant_id",
            unique=True,
            postgresql_where=text(ACTIVE_SQL),
            sqlite_where=text(ACTIVE_SQL),
        ),
        Index("ix_pipeline_runs_tenant_created", "tenant_id", "created_at"),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(32))
    trigger: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]]
    current_step: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None]
    abort_requested: Mapped[bool] = mapped_column(default=False)
    abort_reason: Mapped[str | None] = mapped_column(String(200))
    cleanup: Mapped[dict[str, Any] | None]
    dataset_id: Mapped[str | None] = mapped_column(String(64))
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(32))
    memory_initial_mb: Mapped[float | None] = mapped_column(Float)
    memory_peak_mb: Mapped[float | None] = mapped_column(Float)
    memory_final_mb: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class PipelineStep(Base):
    __tablename__ = "pipeline_steps"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "run_id"],
            ["pipeline_runs.tenant_id", "pipeline_runs.id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    output: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class TrainingJob(Base):
    """One per run: the run id is the idempotency key, so a retry finds it, never makes two."""

    __tablename__ = "training_jobs"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "run_id"],
            ["pipeline_runs.tenant_id", "pipeline_runs.id"],
            ondelete="CASCADE",
        ),
        # Run ids count per tenant, so job ids do too: unique within the tenant only.
        UniqueConstraint("tenant_id", "id"),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64))
    backend: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(128))
    base_model: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    output_dir: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    hyperparameters: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ModelVersion(Base):
    """A registered model version as tuneloop knows it (MLflow holds the artifacts)."""

    __tablename__ = "model_versions"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    training_job_id: Mapped[str | None] = mapped_column(String(64))
    dataset_id: Mapped[str | None] = mapped_column(String(64))
    base_model: Mapped[str] = mapped_column(Text)
    adapter_path: Mapped[str | None] = mapped_column(Text)
    # A hosted fine-tune's name at its provider (ft:...): served by the `openai` section.
    served_model: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))  # challenger / champion / archived
    metrics: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HoldoutReference(Base):
    """The model a tenant's permanent holdout is served: its first champion, pinned once."""

    __tablename__ = "holdout_references"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(32))
    pinned_at: Mapped[datetime] = mapped_column(default=utcnow)
