"""``tuneloop db``: schema migrations."""

from __future__ import annotations

import typer

from tuneloop.cli.common import console, settings
from tuneloop.config import mask_url
from tuneloop.store.migrate import current_revisions, head_revisions, upgrade
from tuneloop.wiring import engine_for

app = typer.Typer(help="Database schema: upgrade and inspect migrations.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(
    revision: str = typer.Argument("heads", help="Alembic revision to upgrade to."),
) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    config = settings()
    engine = engine_for(config, migrate=False)
    upgrade(engine, revision)
    console.print(
        f"database [bold]{mask_url(config.database_url)}[/] at revision "
        f"[bold green]{', '.join(sorted(current_revisions(engine)))}[/]"
    )


@app.command("current")
def current_command() -> None:
    """Show the applied and the newest revision."""
    engine = engine_for(settings(), migrate=False)
    applied = ", ".join(sorted(current_revisions(engine))) or "none"
    console.print(f"applied: {applied}  newest: {', '.join(sorted(head_revisions()))}")
