"""``tuneloop worker`` (the loop's ticking process) and ``tuneloop schedule show``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from tuneloop.cli.common import console, engine, settings

schedule_app = typer.Typer(
    help="The schedule and the triggers of each tenant.", no_args_is_help=True
)


def worker(
    tick_seconds: Annotated[
        float | None, typer.Option(min=0.01, help="Seconds between ticks (default: setting).")
    ] = None,
    once: Annotated[
        bool,
        typer.Option("--once", help="Tick once, wait for the runs it started, and exit."),
    ] = False,
) -> None:
    """Keep the loop moving: start runs on schedule and triggers, advance runs, tick rollouts.

    Only one worker leads at a time (a lease in the database); others wait to take over.
    SIGTERM or Ctrl-C stops it gracefully: the lease is released and a run it executes is
    left resumable.
    """
    from tuneloop.observability.logging import configure_logging
    from tuneloop.worker.process import build_worker, run_foreground

    config = settings()
    if tick_seconds is not None:
        config = config.model_copy(
            update={"worker": config.worker.model_copy(update={"tick_seconds": tick_seconds})}
        )
    configure_logging(config)
    found = build_worker(config)
    if once:
        report = found.tick()
        console.print(f"leader: {report.leader}; started: {report.started or 'nothing'}")
        found.actions.close(interrupt=False)
        return
    console.print(f"worker {found.holder} ticking every {config.worker.tick_seconds:g}s")
    run_foreground(found)


@schedule_app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Per tenant: the next fire, each trigger against its threshold, and whether a run starts."""
    from tuneloop.wiring import build_container
    from tuneloop.worker.actions import AppActions
    from tuneloop.worker.explain import explain_all
    from tuneloop.worker.process import clock_for

    config, store = settings(), engine()
    clock = clock_for(config)
    actions = AppActions(build_container(config, clock=clock, engine=store))
    rows = explain_all(store, config, actions, now=clock.now())
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title="schedule and triggers")
    for column in ("tenant", "schedule", "next fire (UTC)", "triggers", "run now?"):
        table.add_column(column)
    for row in rows:
        triggers = "\n".join(
            f"{t['trigger']}: {t['detail']}" + (" [bold red](fires)[/]" if t["fires"] else "")
            for t in row["triggers"]
        )
        verdict = ("[green]yes[/]: " if row["start"] else "no: ") + "; ".join(row["reasons"])
        table.add_row(
            row["tenant"],
            f"{row['cron']} ({row['timezone']})",
            row["next_fire"][:16].replace("T", " "),
            triggers,
            verdict,
        )
    console.print(table)
