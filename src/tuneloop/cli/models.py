"""``tuneloop models``: the tenant's model versions, and making the first champion."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tuneloop.cli.common import DEFAULT, TenantOption, console, container, engine
from tuneloop.pipeline.promotion import promote_first_champion
from tuneloop.store.models_registry import list_model_versions

app = typer.Typer(
    help="Model versions: list, and promote the first champion.", no_args_is_help=True
)


@app.command("list")
def list_command(
    tenant: TenantOption = DEFAULT, limit: Annotated[int, typer.Option(min=1, max=1000)] = 20
) -> None:
    """List registered versions, newest first, with their status (challenger/champion/archived)."""
    table = Table("model", "version", "status", "run", "dataset", "base model", "created")
    for row in list_model_versions(engine(), tenant, limit=limit):
        table.add_row(
            row.model_id,
            row.version,
            row.status,
            row.run_id or "",
            (row.dataset_id or "")[:12],
            row.base_model[-40:],
            row.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


@app.command("promote")
def promote_command(
    version: Annotated[str, typer.Argument(help="Registered version number to make champion.")],
    tenant: TenantOption = DEFAULT,
) -> None:
    """Make VERSION the tenant's first champion (later ones come from a rollout)."""
    found = container()
    row = promote_first_champion(
        found.engine, found.settings, tenant, version=version, tracker=found.tracker
    )
    console.print(
        f"[green]{row.model_id} v{row.version} is now champion[/] (MLflow alias 'champion')"
    )
