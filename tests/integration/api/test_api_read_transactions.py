"""A read endpoint takes one connection from the pool and runs one transaction, on SQLite and
PostgreSQL (counted with SQLAlchemy's events; the time it takes is bench/api.py's)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from api_helpers import TENANT_A, Keys, add_dataset, auth
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event

from tuneloop.config import Settings
from tuneloop.domain.experiments import ArmSpec
from tuneloop.experiments.service import create_experiment
from tuneloop.pipeline.service import start_run
from tuneloop.rollout.policy import Guardrails, RolloutConfig
from tuneloop.store.deployment_models import Deployment, DeploymentEvent
from tuneloop.store.deployments import add_deployment
from tuneloop.store.models_registry import record_model_version

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
READS = [
    "/fine-tuning/status/{run}",
    "/fine-tuning/runs",
    "/models",
    "/datasets",
    "/datasets/{dataset}",
    "/deployments",
    "/deployment/{deployment}",
    "/evaluation/ab-tests",
    "/evaluation/status/{ab_test}",
]


def one_of_each(db: Engine, settings: Settings) -> dict[str, str]:
    """A run with its model version, a dataset, an A/B test and a deployment, so that every
    read has something to answer."""
    run = start_run(db, settings, TENANT_A)
    for version in ("1", "2"):
        record_model_version(
            db, TENANT_A, model_id="m", version=version, run_id=run.id, base_model="b",
            status="challenger",
        )  # fmt: skip
    arms = [ArmSpec("baseline", "m", "1", 0.5), ArmSpec("candidate", "m", "2", 0.5)]
    experiment = create_experiment(db, TENANT_A, arms=arms, key="ab-test-20261201-001")
    deployment = Deployment(
        tenant_id=TENANT_A, id="deploy-20261201-001", model_id="m", version="2",
        previous_model_id="m", previous_version="1", ab_test_id=experiment.key,
        strategy="gradual_rollout", status="rolling_out", traffic=0.1, step=1,
        rollout_config=RolloutConfig().to_json(), guardrails=Guardrails().to_json(),
        rollback_plan={
            "previous_model": {"model_id": "m", "version": "1"}, "rollback_time_seconds": 30,
            "health_check_endpoints": ["/health"], "triggers": [],
        },
        safety_checks=[], step_started_at=AT,
    )  # fmt: skip
    deployed = DeploymentEvent(
        tenant_id=TENANT_A, deployment_id=deployment.id, seq=1, kind="deployed",
        from_traffic=0.0, to_traffic=0.1, reasons=[], details=None, actor="test", at=AT,
    )  # fmt: skip
    add_deployment(db, deployment, deployed)
    return {
        "run": run.id,
        "dataset": add_dataset(db, TENANT_A),
        "ab_test": experiment.key,
        "deployment": deployment.id,
    }


@pytest.mark.parametrize("path", READS)
def test_one_checkout_and_one_transaction_per_read(
    client: TestClient, keys: Keys, db: Engine, api_settings: Settings, path: str
) -> None:
    url = path.format(**one_of_each(db, api_settings))
    assert client.get(url, headers=auth(keys.viewer)).status_code == 200  # the key is cached
    transactions: list[list[str]] = []  # the statements of each transaction begun
    current: dict[Connection, list[str]] = {}
    checkouts: list[object] = []

    def begun(connection: Connection) -> None:
        current[connection] = []
        transactions.append(current[connection])

    def executed(connection: Connection, _cursor: object, statement: str, *_: object) -> None:
        current[connection].append(statement)

    def checked_out(*_args: object) -> None:
        checkouts.append(None)

    event.listen(db, "begin", begun)
    event.listen(db, "before_cursor_execute", executed)
    event.listen(db.pool, "checkout", checked_out)
    try:
        response = client.get(url, headers=auth(keys.viewer))
    finally:
        event.remove(db, "begin", begun)
        event.remove(db, "before_cursor_execute", executed)
        event.remove(db.pool, "checkout", checked_out)
    assert response.status_code == 200, response.text
    # /deployment/{id} notes the event stream's lag (read-your-writes): a read of the
    # stream, which is Redis or a table of its own (in this database on PostgreSQL), not of
    # the deployment.
    reads = [t for t in transactions if not all("event_stream" in s for s in t)]
    assert len(reads) == 1, transactions
    assert len(checkouts) == len(transactions)
