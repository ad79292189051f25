"""A read endpoint takes one connection from the pool and runs one transaction, on SQLite and
PostgreSQL (counted with SQLAlchemy's events; the time it takes is bench/api.py's)."""

from __future__ import annotations

from collections import Counter

import pytest
from api_helpers import TENANT_A, Keys, auth
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from tuneloop.config import Settings
from tuneloop.pipeline.service import start_run
from tuneloop.store.models_registry import record_model_version


@pytest.mark.parametrize("path", ["/fine-tuning/status/{run}", "/fine-tuning/runs", "/models"])
def test_one_checkout_and_one_transaction_per_read(
    client: TestClient, keys: Keys, db: Engine, api_settings: Settings, path: str
) -> None:
    run = start_run(db, api_settings, TENANT_A)
    record_model_version(
        db, TENANT_A, model_id="m", version="1", run_id=run.id, base_model="b", status="challenger"
    )
    url = path.format(run=run.id)
    assert client.get(url, headers=auth(keys.viewer)).status_code == 200  # the key is cached
    counts: Counter[str] = Counter()

    def begun(_connection: object) -> None:
        counts["begin"] += 1

    def checked_out(*_args: object) -> None:
        counts["checkout"] += 1

    event.listen(db, "begin", begun)
    event.listen(db.pool, "checkout", checked_out)
    try:
        response = client.get(url, headers=auth(keys.viewer))
    finally:
        event.remove(db, "begin", begun)
        event.remove(db.pool, "checkout", checked_out)
    assert response.status_code == 200, response.text
    assert counts == {"begin": 1, "checkout": 1}
