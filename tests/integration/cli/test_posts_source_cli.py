"""``tuneloop posts import`` keeps each post's source version; ``tuneloop posts list`` shows it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tuneloop.cli.main import app
from tuneloop.config import Settings

runner = CliRunner()


def test_imported_sources_are_listed(settings: Settings, tmp_path: Path) -> None:
    lines = [
        {"id": "a", "hook": "H1", "body": "B1", "ts": "2026-11-01T10:00:00Z", "model_id": "m@3"},
        {
            "id": "b",
            "hook": "H2",
            "body": "B2",
            "ts": "2026-11-01T11:00:00Z",
            "source_model": "other",
            "source_version": "1",
        },
        {"id": "c", "hook": "H3", "body": "B3", "ts": "2026-11-01T12:00:00Z"},
    ]
    file = tmp_path / "posts.jsonl"
    file.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    imported = runner.invoke(app, ["posts", "import", str(file), "--tenant", "acme"])
    assert imported.exit_code == 0, imported.output
    listed = runner.invoke(app, ["posts", "list", "--tenant", "acme", "--json"])
    assert listed.exit_code == 0, listed.output
    sources = {p["id"]: (p["source_model"], p["source_version"]) for p in json.loads(listed.output)}
    assert sources == {"a": ("m", "3"), "b": ("other", "1"), "c": (None, None)}
    table = runner.invoke(app, ["posts", "list", "--tenant", "acme"])
    assert table.exit_code == 0, table.output
    rows = [line for line in table.output.splitlines() if line.startswith("│ ")]
    assert [row.split("│")[1].strip() for row in rows] == ["c", "b", "a"]  # newest first
    assert "other" in rows[1] and "│ -" in rows[0]
