"""``tuneloop backup`` and ``tuneloop restore --yes`` through the CLI, on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tuneloop.cli.main import app
from tuneloop.config import Settings
from tuneloop.wiring import engine_for, release_engine


def test_backup_then_restore_undoes_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "workspace"
    url = f"sqlite:///{workspace / 'tuneloop.db'}"
    monkeypatch.setenv("TUNELOOP_DATABASE__URL", url)
    monkeypatch.setenv("TUNELOOP_MLFLOW__TRACKING_URI", "http://mlflow.invalid:5000")
    settings = Settings(workspace=workspace, database={"url": url})
    engine = engine_for(settings)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE notes (body TEXT)"))
        connection.execute(text("INSERT INTO notes VALUES ('kept')"))
    release_engine(settings)
    runner = CliRunner()

    made = runner.invoke(app, ["backup", str(tmp_path / "b.tar.gz")])
    assert made.exit_code == 0, made.output
    assert "app-db:" in made.output and "mlflow-db: skipped" in made.output

    engine = engine_for(settings)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM notes"))
    release_engine(settings)
    refused = runner.invoke(app, ["restore", str(tmp_path / "b.tar.gz")], input="n\n")
    assert refused.exit_code != 0  # asked, and the answer was no

    restored = runner.invoke(app, ["restore", "--yes", str(tmp_path / "b.tar.gz")])
    assert restored.exit_code == 0, restored.output
    engine = engine_for(settings)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT body FROM notes")).scalars().all() == ["kept"]
    release_engine(settings)
