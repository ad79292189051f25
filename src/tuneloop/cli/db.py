"""``tuneloop db``: schema migrations."""

from __future__ import annotations

import typer

from tuneloop.cli.common import console, settings
from tuneloop.config import mask_url
from tuneloop.store.migrate import current_revision, head_revision, upgrade
from tuneloop.wiring import engine_for

app = typer.Typer(help="Database schema: upgrade and inspect migrations.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(
    revision: str = typer.Argument("head", help="Alembic revision to upgrade to."),
) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    config = settings()
    engine = engine_for(config, migrate=False)
    upgrade(engine, revision)
    console.print(
        f"database [bold]{mask_url(config.database_url)}[/] at revision "
        f"[bold green]{current_revision(engine)}[/]"
    )


@app.command("current")
def current_command() -> None:
    """Show the applied and the newest revision."""
    engine = engine_for(settings(), migrate=False)
    console.print(f"applied: {current_revision(engine) or 'none'}  newest: {head_revision()}")
