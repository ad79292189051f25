"""``runs list`` and ``models list``: full ids at any width, and ``--json`` for machines."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tuneloop.cli.main import app
from tuneloop.config import Settings
from tuneloop.pipeline.service import start_run
from tuneloop.store.models_registry import record_model_version
from tuneloop.wiring import engine_for

runner = CliRunner()
MODEL = "tuneloop-a-tenant-with-a-long-name"


def test_lists_show_full_ids_and_json(settings: Settings) -> None:
    engine = engine_for(settings)
    run = start_run(engine, settings, "acme")
    record_model_version(
        engine, "acme", model_id=MODEL, version="12", base_model="tiny", status="challenger",
        run_id=run.id, dataset_id="3f2a9c" * 8,
    )  # fmt: skip
    for command in (["runs", "list"], ["models", "list"]):
        result = runner.invoke(app, [*command, "--tenant", "acme"], env={"COLUMNS": "60"})
        assert result.exit_code == 0, result.output
        assert run.id in result.output  # never cut to "ft-pipeline-2026…"
    assert MODEL in runner.invoke(app, ["models", "list", "--tenant", "acme"]).output

    runs = json.loads(runner.invoke(app, ["runs", "list", "--tenant", "acme", "--json"]).output)
    assert (runs["total"], runs["items"][0]["run_id"]) == (1, run.id)
    models = json.loads(runner.invoke(app, ["models", "list", "--tenant", "acme", "--json"]).output)
    assert [(m["model_id"], m["version"], m["run_id"]) for m in models] == [(MODEL, "12", run.id)]
