"""``store.run_snapshot``: a run, its steps, job and model version from one statement, on
SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event

from tuneloop.config import Settings
from tuneloop.domain.runs import STEPS, RunStatus, StepStatus
from tuneloop.errors import NotFoundError
from tuneloop.pipeline.service import start_run
from tuneloop.store import runs as repo
from tuneloop.store.models_registry import record_model_version
from tuneloop.store.run_snapshot import JobRow, ModelRow, run_snapshot
from tuneloop.store.training_jobs import open_training_job
from tuneloop.store.types import utcnow

TENANT = "acme"


def test_a_new_run_reads_with_its_steps_in_order_and_no_job_or_model(
    engine: Engine, settings: Settings
) -> None:
    run = start_run(engine, settings, TENANT)
    snapshot = run_snapshot(engine, TENANT, run.id)
    assert snapshot.run.id == run.id
    assert snapshot.run.status == RunStatus.PENDING
    assert snapshot.run.config["training"]["base_model"] == settings.training.base_model
    assert [step.name for step in snapshot.steps] == list(STEPS)
    assert {step.status for step in snapshot.steps} == {StepStatus.PENDING}
    assert snapshot.job is None
    assert snapshot.model is None


def test_the_run_reads_with_its_outputs_job_and_latest_model_version(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    run = start_run(engine, settings, TENANT)
    started = utcnow() - timedelta(minutes=10)
    repo.move_run(engine, TENANT, run.id, RunStatus.RUNNING, started_at=started)
    output = {"status": "ok", "counts": {"train": 9}, "rate": 0.25}
    repo.update_step(
        engine, TENANT, run.id, "collect", status=StepStatus.SUCCEEDED, output=output, attempts=1
    )
    job_id = open_training_job(
        engine,
        TENANT,
        run.id,
        backend="local",
        output_dir=tmp_path,
        base_model="tiny",
        hyperparameters={},
    )
    for version, at in (("1", started), ("2", started + timedelta(minutes=1))):
        record_model_version(
            engine,
            TENANT,
            model_id="m",
            version=version,
            run_id=run.id,
            training_job_id=job_id,
            base_model="tiny",
            status="challenger",
            created_at=at,
        )

    snapshot = run_snapshot(engine, TENANT, run.id)
    assert snapshot.run.started_at == started
    assert snapshot.run.started_at.tzinfo is not None
    collect = snapshot.steps[0]
    assert (collect.name, collect.status, collect.attempts) == ("collect", "succeeded", 1)
    assert collect.output == output
    assert [step.output for step in snapshot.steps[1:]] == [None] * (len(STEPS) - 1)
    assert snapshot.job == JobRow(job_id, "tiny", "running")
    assert snapshot.model == ModelRow("m", "2", job_id, "tiny", "challenger")


def test_another_tenants_run_is_not_found(engine: Engine, settings: Settings) -> None:
    run = start_run(engine, settings, TENANT)
    with pytest.raises(NotFoundError):
        run_snapshot(engine, "other", run.id)
    with pytest.raises(NotFoundError):
        run_snapshot(engine, TENANT, "ft-pipeline-nope")


def test_one_statement_and_the_connection_goes_back_to_transactions(
    engine: Engine, settings: Settings
) -> None:
    run = start_run(engine, settings, TENANT)
    run_snapshot(engine, TENANT, run.id)  # the statement is compiled and cached
    counts: Counter[str] = Counter()
    used: list[Any] = []

    def executed(connection: Connection, *_args: object) -> None:
        counts["statements"] += 1
        used.append(connection.connection.dbapi_connection)

    event.listen(engine, "before_cursor_execute", executed)
    try:
        run_snapshot(engine, TENANT, run.id)
    finally:
        event.remove(engine, "before_cursor_execute", executed)
    assert counts == {"statements": 1}
    # PostgreSQL reads it in autocommit mode; the connection is back in the pool with
    # transactions again, so a write made on it next still commits or rolls back whole.
    assert getattr(used[0], "autocommit", False) is False
