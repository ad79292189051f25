"""The 0005 migration matches the models; one active deployment per tenant."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from tuneloop.store.migrate import downgrade, upgrade
from tuneloop.store.schema import metadata

TABLES = {"deployments", "deployment_events"}


def test_migration_matches_the_models_and_goes_down_and_up(engine: Engine) -> None:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    ours = [d for d in diff if any(table in repr(d) for table in TABLES)]
    assert ours == []
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("deployments")}
    assert {"uq_deployments_active", "ix_deployments_tenant_created"} <= indexes
    downgrade(engine, "0004")
    assert not TABLES & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
