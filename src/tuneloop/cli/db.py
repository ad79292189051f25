"""``tuneloop db``: schema migrations."""

from __future__ import annotations

import typer

from tuneloop.app.database import applied_revisions, newest_revisions, upgrade_schema
from tuneloop.cli.common import console, settings
from tuneloop.config import mask_url

app = typer.Typer(help="Database schema: upgrade and inspect migrations.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(
    revision: str = typer.Argument("heads", help="Alembic revision to upgrade to."),
) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    config = settings()
    applied = upgrade_schema(config, revision)
    console.print(
        f"database [bold]{mask_url(config.database_url)}[/] at revision "
        f"[bold green]{', '.join(applied)}[/]"
    )


@app.command("current")
def current_command() -> None:
    """Show the applied and the newest revision."""
    applied = ", ".join(applied_revisions(settings())) or "none"
    console.print(f"applied: {applied}  newest: {', '.join(newest_revisions())}")
