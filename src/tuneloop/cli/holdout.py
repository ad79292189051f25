"""``tuneloop holdout report``: the permanent holdout against everyone else."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from tuneloop.app.holdout import HoldoutReport, holdout_report
from tuneloop.cli.common import DEFAULT, TenantOption, console, container

app = typer.Typer(
    help="The permanent holdout (experiments.holdout_share): the cumulative effect of "
    "every promotion.",
    no_args_is_help=True,
)


@app.command("report")
def report(
    tenant: TenantOption = DEFAULT,
    since: Annotated[
        datetime | None, typer.Option(help="Count outcomes from this time on (ISO 8601, UTC).")
    ] = None,
    alpha: Annotated[float, typer.Option(min=0.001, max=0.5, help="1 - confidence.")] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Holdout vs everyone else: units, mean engagement, relative lift with its interval."""
    found = holdout_report(
        container(), tenant=tenant, since=_aware(since) if since else None, alpha=alpha
    )
    if as_json:
        typer.echo(json.dumps(found.to_json(), indent=2, default=str))
        return
    console.print(_table(found))
    console.print(found.message)


def _table(found: HoldoutReport) -> Table:
    reference = found.reference or "none yet (no champion)"
    table = Table(
        "group",
        "model",
        "units",
        "mean engagement",
        title=f"holdout of {found.tenant}: {found.share:.1%} of units on {reference}",
        title_justify="left",
    )
    for name, group in found.groups.items():
        mean = "-" if group.mean is None else f"{group.mean:.5f}"
        model = reference if name == "holdout" else "the loop's models"
        table.add_row(name, model, str(group.units), mean)
    effect = found.to_json()["effect"]
    if effect is not None and effect["estimate"] is not None and effect["ci"] is not None:
        low, high = effect["ci"]
        table.add_section()
        table.add_row(
            "lift",
            "everyone else / holdout - 1",
            "",
            f"{effect['estimate']:+.2%} [{_pct(low)}, {_pct(high)}]",
        )
    return table


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{value:+.2%}"


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
