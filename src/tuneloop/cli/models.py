"""``tuneloop models``: the tenant's model versions, and making the first champion."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Column, Table

from tuneloop.app.models import ModelVersion, list_model_versions, promote_first
from tuneloop.cli.common import DEFAULT, TenantOption, console, container, engine

app = typer.Typer(
    help="Model versions: list, and promote the first champion.", no_args_is_help=True
)


@app.command("list")
def list_command(
    tenant: TenantOption = DEFAULT,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """List registered versions, newest first, with their status (challenger, champion,
    archived, rolled_back); ids in full, whatever the terminal's width."""
    rows = list_model_versions(engine(), tenant, limit=limit)
    if as_json:
        console.print_json(data=[_json(row) for row in rows])
        return
    run_width = max((len(row.run_id or "") for row in rows), default=3)
    table = Table(
        Column("model", no_wrap=True, min_width=max((len(r.model_id) for r in rows), default=5)),
        Column("version", no_wrap=True),
        "status",
        Column("run", no_wrap=True, min_width=run_width),
        "dataset",
        "base model",
        "created",
    )
    for row in rows:
        table.add_row(
            row.model_id,
            row.version,
            row.status,
            row.run_id or "",
            (row.dataset_id or "")[:12],
            row.base_model[-40:],
            row.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table, crop=False)  # ids in full, even past the width


def _json(row: ModelVersion) -> dict[str, Any]:
    return {
        "model_id": row.model_id,
        "version": row.version,
        "status": row.status,
        "run_id": row.run_id,
        "training_job_id": row.training_job_id,
        "dataset_id": row.dataset_id,
        "base_model": row.base_model,
        "adapter_path": row.adapter_path,
        "created_at": row.created_at.isoformat(),
    }


@app.command("promote")
def promote_command(
    version: Annotated[str, typer.Argument(help="Registered version number to make champion.")],
    tenant: TenantOption = DEFAULT,
) -> None:
    """Make VERSION the tenant's first champion (later ones come from a rollout)."""
    row = promote_first(container(), tenant, version=version)
    console.print(
        f"[green]{row.model_id} v{row.version} is now champion[/] (MLflow alias 'champion')"
    )
