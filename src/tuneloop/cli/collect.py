"""``tuneloop collect`` and ``tuneloop datasets``: building and inspecting dataset versions."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table

from tuneloop.app.datasets import get_dataset, list_datasets
from tuneloop.cli.common import DEFAULT, TenantOption, console, engine, progress_bar, settings
from tuneloop.collect.service import collect_dataset, new_qualifying_since_last, query_from
from tuneloop.dataset.builder import BuildResult
from tuneloop.dataset.shares import describe_shares, source_shares

datasets_app = typer.Typer(help="Dataset versions: list and inspect.", no_args_is_help=True)


def collect(
    tenant: TenantOption = DEFAULT,
    persona: Annotated[str | None, typer.Option(help="Only this persona's posts.")] = None,
    days_back: Annotated[
        int | None, typer.Option(min=1, help="Window in days (default: setting).")
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Minimum engagement rate (default: setting)."),
    ] = None,
    max_records: Annotated[int | None, typer.Option(min=1, help="Most posts to take.")] = None,
) -> None:
    """Collect the best posts and build a validated, versioned dataset."""
    config = settings()
    overrides = {
        key: value
        for key, value in {
            "days_back": days_back,
            "engagement_threshold": threshold,
            "max_records": max_records,
        }.items()
        if value is not None
    }
    if overrides:
        config = config.model_copy(
            update={"pipeline": config.pipeline.model_copy(update=overrides)}
        )
    store = engine()
    query = query_from(config, tenant, persona_id=persona)
    with progress_bar("collecting posts", None) as bar:
        task = bar.task_ids[0]
        outcome = collect_dataset(
            store, config, query, progress=lambda read: bar.update(task, completed=read)
        )
        bar.update(task, total=outcome.result.source_records)
    _print_summary(outcome.result, outcome.qualifying, query.max_records)
    if outcome.version is not None:
        console.print(f"dataset [bold green]{outcome.version.id[:12]}[/] at {outcome.version.path}")


def _print_summary(result: BuildResult, qualifying: int, max_records: int | None) -> None:
    counts, tokens = result.counts, result.tokens
    table = Table(show_header=False, box=None)
    table.add_row(
        "qualifying posts", f"{qualifying} (took {result.source_records}, max {max_records})"
    )
    table.add_row("examples", f"{counts['hook']} hook + {counts['body']} body = {counts['total']}")
    table.add_row("split", f"{counts['train']} train / {counts['validation']} validation")
    table.add_row(
        "tokens",
        f"{tokens['total']} total, train p50 {tokens['train']['p50']} "
        f"p95 {tokens['train']['p95']} max {tokens['train']['max']}",
    )
    table.add_row("estimated cost", f"${result.estimated_cost_usd:.4f} (train tokens x epochs)")
    table.add_row(
        "engagement", "min {min:.4f} mean {mean:.4f} max {max:.4f}".format(**result.engagement)
    )
    dropped = result.dropped
    table.add_row(
        "dropped",
        f"{dropped.duplicates} duplicates, {sum(dropped.invalid.values())} invalid"
        + (f" ({dict(dropped.invalid)})" if dropped.invalid else ""),
    )
    sources = result.source_report()
    table.add_row("source versions", describe_shares(sources["shares"]))
    if sources["dropped_posts"]:
        table.add_row(
            "capped",
            f"{sum(sources['dropped_posts'].values())} posts "
            f"({sources['dropped_posts']}): {sources['reason']}",
        )
    style = "green" if result.status == "ok" else "yellow"
    console.print(Panel(table, title=f"[{style}]{result.message}[/]", title_align="left"))


@datasets_app.command("list")
def list_command(
    tenant: TenantOption = DEFAULT,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    new: Annotated[
        bool, typer.Option(help="Also count qualifying posts since the last collection.")
    ] = False,
) -> None:
    """List dataset versions, newest first."""
    store = engine()
    table = Table("version", "created", "posts", "hook", "body", "train", "val", "tokens")
    # A table of its own: beside the counts it would squeeze the version ids users copy.
    sources = Table("version", "share of examples per source model version")
    rows = list_datasets(store, tenant, limit=limit)
    for row in rows:
        table.add_row(
            row.id[:12],
            row.created_at.strftime("%Y-%m-%d %H:%M"),
            str(row.source_records),
            str(row.hook_examples),
            str(row.body_examples),
            str(row.train_examples),
            str(row.validation_examples),
            str(row.total_tokens),
        )
        sources.add_row(row.id[:12], describe_shares(source_shares(row.manifest)))
    console.print(table)
    if rows:
        console.print(sources)
    if new:
        console.print(
            f"new qualifying posts since the last collection: "
            f"{new_qualifying_since_last(store, settings(), tenant)}"
        )


@datasets_app.command("show")
def show_command(
    version: Annotated[str, typer.Argument(help="Version hash or a prefix of it (>= 6 chars).")],
    tenant: TenantOption = DEFAULT,
) -> None:
    """Show a dataset version's manifest."""
    row = get_dataset(engine(), tenant, version)
    console.print(f"[bold]{row.id}[/]  {row.path}")
    console.print_json(json.dumps(row.manifest))
