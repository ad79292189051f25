"""Per-unit hourly rollups of outcome events, backfilled from the events already stored;
an index to read a unit's events by time (the partial hours at a window's edges).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tuneloop.store.types import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

KEY = ("tenant_id", "experiment_key", "arm", "model_id", "unit_id", "bucket")
# The hour an event fell in, as each database stores timestamps (SQLite: SQLAlchemy's
# "YYYY-MM-DD HH:MM:SS.ffffff" text in UTC).
HOUR = {
    "postgresql": "date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    "sqlite": "strftime('%Y-%m-%d %H:00:00.000000', ts)",
}
BACKFILL = """
INSERT INTO unit_rollups (tenant_id, experiment_key, arm, model_id, unit_id, bucket,
    exposures, first_exposure_at, outcomes, engaged, engagement_sum, generations, errors,
    latency_n, latency_sum, tokens_sum, cost_n, cost_sum)
SELECT tenant_id, coalesce(experiment_key, ''), coalesce(arm, ''), coalesce(model_id, ''),
    unit_id, {hour},
    sum(CASE WHEN kind = 'exposure' THEN 1 ELSE 0 END),
    min(CASE WHEN kind = 'exposure' THEN ts END),
    sum(CASE WHEN kind = 'outcome' THEN 1 ELSE 0 END),
    count(CASE WHEN kind = 'outcome' THEN engagement END),
    coalesce(sum(CASE WHEN kind = 'outcome' THEN engagement END), 0),
    sum(CASE WHEN kind = 'generation' THEN 1 ELSE 0 END),
    sum(CASE WHEN kind = 'generation' AND error THEN 1 ELSE 0 END),
    count(CASE WHEN kind = 'generation' THEN latency_ms END),
    coalesce(sum(CASE WHEN kind = 'generation' THEN latency_ms END), 0),
    coalesce(sum(CASE WHEN kind = 'generation' THEN tokens END), 0),
    count(CASE WHEN kind = 'generation' THEN cost END),
    coalesce(sum(CASE WHEN kind = 'generation' THEN cost END), 0)
FROM outcome_events
GROUP BY tenant_id, coalesce(experiment_key, ''), coalesce(arm, ''), coalesce(model_id, ''),
    unit_id, {hour}
"""


def _id(length: int) -> sa.String:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    counts = ("exposures", "outcomes", "engaged", "generations", "errors", "latency_n")
    sums = ("engagement_sum", "latency_sum")
    op.create_table(
        "unit_rollups",
        sa.Column("tenant_id", _id(64), nullable=False),
        sa.Column("experiment_key", _id(64), nullable=False),
        sa.Column("arm", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(256), nullable=False),
        sa.Column("unit_id", sa.String(128), nullable=False),
        sa.Column("bucket", UTCDateTime(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in counts),
        sa.Column("first_exposure_at", UTCDateTime()),
        *(sa.Column(name, sa.Float(), nullable=False) for name in sums),
        sa.Column("tokens_sum", sa.BigInteger(), nullable=False),
        sa.Column("cost_n", sa.Integer(), nullable=False),
        sa.Column("cost_sum", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name="pk_unit_rollups"),
    )
    op.create_index("ix_unit_rollups_unit", "unit_rollups", ["tenant_id", "unit_id", "bucket"])
    op.create_index("ix_outcome_events_unit_ts", "outcome_events", ["tenant_id", "unit_id", "ts"])
    dialect = op.get_bind().dialect.name
    op.execute(BACKFILL.format(hour=HOUR.get(dialect, HOUR["postgresql"])))


def downgrade() -> None:
    op.drop_index("ix_outcome_events_unit_ts", table_name="outcome_events")
    op.drop_table("unit_rollups")
