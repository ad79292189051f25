"""The foundation's commands end to end through the Typer app, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tuneloop.cli.main import app
from tuneloop.config import Settings

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_db_upgrade_seed_collect_and_datasets(settings: Settings) -> None:
    code, out = invoke("db", "upgrade")
    assert code == 0, out
    code, out = invoke("seed", "--posts", "3000", "--tenant", "acme")
    assert code == 0, out
    assert "tenant acme now has 3000 posts" in out
    code, out = invoke("collect", "--tenant", "acme")
    assert code == 0, out
    assert "valid examples from" in out and "dataset " in out
    code, out = invoke("datasets", "list", "--tenant", "acme", "--new")
    assert code == 0, out
    assert "new qualifying posts since the last collection: 0" in out
    version = next(
        line.split()[1]
        for line in out.splitlines()
        if line.startswith("│ ") and "version" not in line
    )
    code, out = invoke("datasets", "show", version, "--tenant", "acme")
    assert code == 0, out
    assert '"format": "openai-chat-jsonl"' in out
    code, out = invoke("datasets", "show", version, "--tenant", "someone-else")
    assert code == 4 and "not found" in out


def test_collect_below_threshold_says_not_enough_data(settings: Settings) -> None:
    invoke("seed", "--posts", "100")
    code, out = invoke("collect")
    assert code == 0, out
    assert "not enough data" in out


def test_import_keeps_good_rows_and_exits_2_on_bad_ones(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "posts.csv"
    path.write_text(
        "id,hook,body,engagement_rate,ts\n"
        "a,Hook,Body,0.1,2026-11-01T00:00:00Z\n"
        "b,Hook,Body,2.0,2026-11-01T00:00:00Z\n"
    )
    code, out = invoke("posts", "import", str(path))
    assert code == 2
    assert "line 3" in out and "engagement_rate" in out
    assert "1 rejected" in out and "the 1 good rows were kept" in out
    assert "Traceback" not in out
    # Idempotent: importing again keeps one row per id.
    code, out = invoke("posts", "import", str(path), "--no-strict")
    assert code == 0 and "1 accepted" in out


def test_missing_file_and_empty_file_are_clear_errors(settings: Settings, tmp_path: Path) -> None:
    code, out = invoke("posts", "import", str(tmp_path / "nope.csv"))
    assert code == 2 and "cannot read file" in out
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, out = invoke("posts", "import", str(empty))
    assert code == 2 and "the file is empty" in out


def test_version_needs_no_command() -> None:
    from tuneloop import __version__

    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.output) == (0, f"tuneloop {__version__}\n")
