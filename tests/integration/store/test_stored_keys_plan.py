"""The edge's duplicate check stays a primary-key probe per key, on fresh statistics or not.

After a burst the events table has many rows the planner has not analysed yet; estimating a
handful of rows per tenant, it answered ``IN (...)`` and ``= ANY(...)`` by scanning the whole
tenant (60 ms instead of 2 ms per ``POST /v1/events`` at 200,000 events). The plan is read
with EXPLAIN, before and after ANALYZE."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text

from tuneloop.store.db import make_engine
from tuneloop.store.events import _STORED_ANY, COLUMNS, insert_events, stored_keys
from tuneloop.store.migrate import upgrade

TENANT = "acme"


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _rows(count: int) -> Iterator[tuple[object, ...]]:
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    for i in range(count):
        values = {
            "tenant_id": TENANT,
            "idempotency_key": f"evt-{i:07d}",
            "unit_id": f"u-{i % 500}",
            "kind": "generation",
            "error": False,
            "ts": now,
            "received_at": now,
        }
        yield tuple(values.get(name) for name in COLUMNS)


def _plan(engine: Engine, keys: list[str]) -> str:
    with engine.connect() as connection:
        compiled = _STORED_ANY.compile(dialect=connection.dialect)
        found = connection.exec_driver_sql(
            f"EXPLAIN {compiled}", {"tenant": TENANT, "keys": keys}
        ).all()
    return "\n".join(row[0] for row in found)


def test_the_duplicate_check_probes_the_primary_key_even_on_stale_statistics(pg: Engine) -> None:
    insert_events(pg, _rows(20_000))  # no ANALYZE: the planner knows nothing about them
    keys = [f"evt-{i:07d}" for i in range(0, 40_000, 400)]  # 50 stored, 50 new
    for _ in ("stale statistics", "analysed"):
        plan = _plan(pg, keys)
        assert "pk_outcome_events" in plan, plan
        assert "Seq Scan on outcome_events" not in plan, plan
        assert "Bitmap Heap Scan on outcome_events" not in plan, plan
        assert stored_keys(pg, TENANT, keys) == {key for key in keys if key < "evt-0020000"}
        assert stored_keys(pg, "other", keys) == set()  # tenants never see each other
        with pg.begin() as connection:
            connection.execute(text("ANALYZE outcome_events"))
