"""``tuneloop config show``: the effective settings, with secrets and passwords masked."""

from __future__ import annotations

import json

import typer

from tuneloop.cli.common import console, settings

app = typer.Typer(help="Configuration: show the effective settings.", no_args_is_help=True)


@app.command("show")
def show() -> None:
    """Print the settings after env, tuneloop.toml and defaults are merged (secrets masked)."""
    console.print_json(json.dumps(settings().redacted(), default=str))
