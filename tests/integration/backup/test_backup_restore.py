"""``backup`` then ``restore``: the same runs, datasets, experiments, deployments and MLflow
registered versions come back; a corrupted or unfitting archive changes nothing."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.orm import Session

from registry_helpers import register_version
from tuneloop.app.simulation import simulate_traffic
from tuneloop.backup import backup, restore
from tuneloop.backup.archive import read_archive
from tuneloop.config import Settings
from tuneloop.errors import InvalidInputError
from tuneloop.experiments import service
from tuneloop.experiments.service import ModelRef, two_arms
from tuneloop.pipeline.promotion import promote_first_champion
from tuneloop.rollout.manager import DeploymentManager
from tuneloop.rollout.safety import EvaluationResult
from tuneloop.store.models import DatasetVersion
from tuneloop.store.runs import create_run
from tuneloop.synthetic.traffic import TrafficSpec
from tuneloop.tracking.connection import MLFLOW_ENV_DEFAULTS
from tuneloop.wiring import engine_for, release_engine, tracker_for

TENANT = "acme"
NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)
# The tables that must hold rows before the backup, so the comparison is not vacuous.
POPULATED = {"pipeline_runs", "dataset_versions", "experiments", "deployments", "model_versions"}


@pytest.fixture(autouse=True)
def _mlflow_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in MLFLOW_ENV_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    yield
    for name in MLFLOW_ENV_DEFAULTS:
        os.environ.pop(name, None)


def populate(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    """A run, a dataset, two registered versions, an experiment with traffic, a deployment."""
    tracker = tracker_for(settings)
    first = register_version(engine, tracker, tmp_path / "a1", "p-001", tenant=TENANT)
    second = register_version(engine, tracker, tmp_path / "a2", "p-002", tenant=TENANT)
    model = f"tuneloop-{TENANT}"
    promote_first_champion(engine, settings, TENANT, version=first)
    baseline, candidate = ModelRef(model, first), ModelRef(model, second)
    row = service.create_experiment(
        engine, TENANT, arms=two_arms(baseline, candidate, 0.5), duration_hours=24
    )
    spec = TrafficSpec(row.key, (), units=3000, lift=0.4, cost_change=-0.3, seed=11)
    simulate_traffic(engine, TENANT, row.key, spec=spec)
    manager = DeploymentManager(engine, tracker=tracker, settings=settings.rollout)
    manager.deploy(TENANT, model=candidate, evaluation=EvaluationResult(row.key))
    create_run(engine, TENANT, trigger="manual", config={"force_run": True}, now=NOW)
    with Session(engine) as session, session.begin():
        session.add(
            DatasetVersion(
                tenant_id=TENANT, id="ds-1", persona_id=None, path="/data/ds-1",
                source_records=10, hook_examples=10, body_examples=10, train_examples=18,
                validation_examples=2, total_tokens=1234,
                manifest={"format": "openai-chat-jsonl"}, created_at=NOW,
            )
        )  # fmt: skip
    (settings.artifacts_dir / "datasets").mkdir(parents=True, exist_ok=True)
    (settings.artifacts_dir / "datasets" / "ds-1.jsonl").write_text('{"messages": []}\n')


def snapshot(url: str) -> dict[str, list[str]]:
    """Every table's rows, order-free."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                name: sorted(
                    repr(tuple(row)) for row in connection.execute(text(f'SELECT * FROM "{name}"'))
                )
                for name in inspect(connection).get_table_names()
            }
    finally:
        engine.dispose()


def app_rows(settings: Settings) -> dict[str, list[str]]:
    engine = engine_for(settings)
    rows = snapshot(str(engine.url.render_as_string(hide_password=False)))
    release_engine(settings)
    return rows


def state(settings: Settings) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, str]]:
    files = {
        str(path.relative_to(settings.artifacts_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(settings.artifacts_dir.rglob("*"))
        if path.is_file()
    }
    return app_rows(settings), snapshot(settings.mlflow_tracking_uri), files


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow SQLite store (its migrations take seconds: made once)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{path}", registry_uri=f"sqlite:///{path}")
    client.search_experiments()
    client.search_registered_models()
    return path


@pytest.fixture
def populated(
    settings: Settings, engine: Engine, tmp_path: Path, mlflow_template: Path
) -> Settings:
    """The full state, on SQLite and PostgreSQL."""
    shutil.copyfile(mlflow_template, settings.workspace / "mlflow.db")
    populate(engine, settings, tmp_path / "adapters")
    release_engine(settings)
    return settings


@pytest.fixture
def light(tmp_path: Path, mlflow_template: Path) -> Iterator[Settings]:
    """SQLite, migrated, an MLflow store and one artifact: enough to show a refusal."""
    workspace = tmp_path / "workspace"
    settings = Settings(workspace=workspace, database={"url": f"sqlite:///{workspace / 'l.db'}"})
    engine_for(settings)
    release_engine(settings)
    shutil.copyfile(mlflow_template, workspace / "mlflow.db")
    settings.artifacts_dir.mkdir(parents=True)
    (settings.artifacts_dir / "a.txt").write_text("an artifact\n")
    yield settings
    release_engine(settings)


def test_restore_into_a_fresh_workspace_gives_back_the_same_state(
    populated: Settings, tmp_path: Path
) -> None:
    if not populated.database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL: restored over its own schema (next test); tables are named")
    before = state(populated)
    assert {name for name, rows in before[0].items() if rows} >= POPULATED
    assert before[1]["model_versions"] and before[1]["registered_models"]
    archive = backup(populated, tmp_path / "b" / "tuneloop.tar.gz", created_at=NOW).path
    manifest = read_archive(archive, _empty(tmp_path))
    assert {c.name for c in manifest.components} == {
        "app-db", "mlflow-db", "artifacts", "mlartifacts",
    }  # fmt: skip

    fresh_workspace = tmp_path / "fresh"
    fresh = Settings(
        workspace=fresh_workspace,
        database={"url": f"sqlite:///{fresh_workspace / 'tuneloop.db'}"},
    )
    result = restore(fresh, archive)
    assert sorted(result.restored) == ["app-db", "artifacts", "mlartifacts", "mlflow-db"]
    assert state(fresh) == before


def test_restore_over_changed_state_puts_the_backup_back(
    populated: Settings, tmp_path: Path
) -> None:
    """On SQLite and PostgreSQL (pg_dump/pg_restore): later changes are undone."""
    before = state(populated)
    archive = backup(populated, tmp_path / "tuneloop.tar.gz", created_at=NOW).path
    engine = engine_for(populated)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM dataset_versions"))
    release_engine(populated)
    (populated.artifacts_dir / "datasets" / "ds-1.jsonl").write_text("changed\n")
    (populated.artifacts_dir / "stray.txt").write_text("added after the backup\n")
    assert state(populated) != before
    restore(populated, archive)
    assert state(populated) == before


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / f"x{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    return folder


def _rewrite(archive: Path, target: Path, change: dict[str, bytes]) -> None:
    """A copy of ``archive`` with some members' bytes replaced (manifest kept as it was)."""
    with tarfile.open(archive, "r:gz") as source, tarfile.open(target, "w:gz") as out:
        for member in source.getmembers():
            data = change.get(member.name) or source.extractfile(member).read()  # type: ignore[union-attr]
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))


@pytest.mark.parametrize("damage", ["altered member", "truncated file", "not an archive"])
def test_a_corrupted_archive_is_refused_and_changes_nothing(
    light: Settings, tmp_path: Path, damage: str
) -> None:
    populated = light
    archive = backup(populated, tmp_path / "good.tar.gz", created_at=NOW).path
    bad = tmp_path / "bad.tar.gz"
    if damage == "altered member":
        _rewrite(archive, bad, {"artifacts.tar": b"not the packed folder"})
    elif damage == "truncated file":
        bad.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    else:
        bad.write_bytes(gzip.compress(b"hello"))
    (populated.artifacts_dir / "later.txt").write_text("written after the backup\n")
    before = state(populated)
    with pytest.raises(InvalidInputError):
        restore(populated, bad)
    assert state(populated) == before
    assert not list(populated.workspace.glob("*.restoring"))


def test_an_archive_of_another_database_kind_is_refused(light: Settings, tmp_path: Path) -> None:
    populated = light
    archive = backup(populated, tmp_path / "good.tar.gz", created_at=NOW).path
    before = state(populated)
    elsewhere = populated.model_copy(
        update={
            "database": populated.database.model_copy(update={"url": "postgresql://x@nohost/db"})
        }
    )
    with pytest.raises(InvalidInputError, match="app-db was backed up from sqlite"):
        restore(elsewhere, archive)
    assert state(populated) == before
