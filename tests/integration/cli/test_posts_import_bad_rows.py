"""``tuneloop posts import`` with rows the database or the CSV parser would refuse, on SQLite
and PostgreSQL: each bad row is reported by line and reason, the good rows are kept, no
traceback, and nothing of the rows' contents is printed beyond the offending field's name."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tuneloop.cli.main import app
from tuneloop.config import Settings
from tuneloop.store.db import make_engine
from tuneloop.store.posts import count_posts

SECRET = "confidential-words"


def _csv(tmp_path: Path, bad: dict[int, str]) -> Path:
    """51 data rows (lines 2..52); row ``n`` gets body ``bad[n]`` when given."""
    lines = ["id,hook,body,ts"]
    for n in range(1, 52):
        body = bad.get(n, f"{SECRET} body {n}")
        lines.append(f'p{n},{SECRET} hook {n},"{body}",2026-11-01T00:00:00Z')
    path = tmp_path / "posts.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bad_rows_are_reported_and_the_good_ones_kept(settings: Settings, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    path = _csv(tmp_path, {20: "x" * 200_000, 33: f"{SECRET}\u0000nul"})
    result = runner.invoke(app, ["posts", "import", str(path), "--tenant", "acme"])
    out = result.output
    assert result.exit_code == 2, out
    assert ("Traceback" not in out and result.exception is None) or isinstance(
        result.exception, SystemExit
    )
    assert "49 accepted" in out and "2 rejected" in out
    assert "line 21" in out and "'body' is longer than 131072" in out
    assert "line 34" in out and "NUL" in out
    assert SECRET not in out
    engine = make_engine(settings.database.url)
    try:
        assert count_posts(engine, "acme") == 49
    finally:
        engine.dispose()
