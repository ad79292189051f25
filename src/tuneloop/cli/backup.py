"""``tuneloop backup`` and ``tuneloop restore``: one archive of the deployment's state."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from tuneloop.backup import backup as run_backup
from tuneloop.backup import restore as run_restore
from tuneloop.cli.common import console, settings
from tuneloop.wiring import release_engine


def backup(
    archive: Path = typer.Argument(..., help="The archive to write (.tar.gz)."),
) -> None:
    """Back up the app database, the MLflow store and the artifacts into one archive."""
    result = run_backup(settings(), archive, created_at=datetime.now(UTC))
    for component in result.manifest.components:
        console.print(f"{component.name}: {component.bytes} bytes  sha256 {component.sha256[:12]}")
    for name, why in result.manifest.skipped.items():
        console.print(f"{name}: skipped ({why})")
    console.print(f"wrote [bold]{result.path}[/]")


def restore(
    archive: Path = typer.Argument(..., exists=True, dir_okay=False, help="A `backup` archive."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask; replace the current state."),
) -> None:
    """Restore an archive over the current state (stop the API and the worker first)."""
    config = settings()
    if not yes:
        typer.confirm(f"Replace the current state of {config.workspace} by {archive}?", abort=True)
    release_engine(config)  # nothing of ours may hold the database being replaced
    result = run_restore(config, archive)
    console.print(f"restored: {', '.join(result.restored) or 'nothing'}")
    for name, why in result.skipped.items():
        console.print(f"{name}: not in the archive ({why})")
