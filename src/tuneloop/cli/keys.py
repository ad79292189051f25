"""``tuneloop keys``: create (the key is printed once), list and revoke API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tuneloop.cli.common import DEFAULT, TenantOption, console, engine
from tuneloop.store.auth_models import Role, create_api_key, list_api_keys, revoke_api_key

app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)


@app.command("create")
def create_command(
    role: Annotated[Role, typer.Option(help="viewer, operator or admin.")],
    tenant: TenantOption = DEFAULT,
    name: Annotated[str | None, typer.Option(help="A label for people.")] = None,
) -> None:
    """Create a key; it is printed once, only its hash is stored."""
    issued = create_api_key(engine(), tenant, role=role, name=name)
    console.print(
        f"created key [bold]{issued.record.id}[/] ({role.value}, tenant {tenant}). "
        "Store it now, it is not shown again:",
        highlight=False,
    )
    typer.echo(issued.plaintext)


@app.command("list")
def list_command(tenant: TenantOption = DEFAULT) -> None:
    """List a tenant's keys (ids and roles, never the keys)."""
    table = Table("id", "role", "name", "created", "revoked")
    for row in list_api_keys(engine(), tenant):
        revoked = row.revoked_at.strftime("%Y-%m-%d %H:%M") if row.revoked_at else ""
        table.add_row(
            row.id, row.role, row.name or "", row.created_at.strftime("%Y-%m-%d %H:%M"), revoked
        )
    console.print(table)


@app.command("revoke")
def revoke_command(
    key_id: Annotated[str, typer.Argument(help="The key's id (the 12 characters after tl_).")],
    tenant: TenantOption = DEFAULT,
) -> None:
    """Revoke a key; requests with it are refused from now on."""
    record = revoke_api_key(engine(), tenant, key_id)
    console.print(f"revoked key [bold]{record.id}[/] of tenant {tenant}", highlight=False)
