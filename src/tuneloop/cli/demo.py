"""``tuneloop demo``: the loop's first half from nothing, with zero configuration."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table

from tuneloop.cli.charts import ends, sparkline
from tuneloop.cli.common import console, settings
from tuneloop.cli.posts import seed as seed_posts
from tuneloop.cli.runs import LiveReporter
from tuneloop.config import Settings, get_settings
from tuneloop.pipeline.runner import execute
from tuneloop.pipeline.service import context_for, resumable_run, start_run
from tuneloop.pipeline.steps import STEP_FUNCTIONS
from tuneloop.store import runs as repo
from tuneloop.store.posts import count_posts
from tuneloop.wiring import engine_for


def demo(
    workspace: Annotated[
        Path | None, typer.Option(help="Where to put the demo's DB, MLflow store and artifacts.")
    ] = None,
    posts: Annotated[int, typer.Option(min=500, help="Synthetic posts to seed.")] = 3000,
    tenant: Annotated[str, typer.Option(help="Tenant for the demo.")] = "demo",
    backend: Annotated[
        str,
        typer.Option(help="local | openai (against a built-in fake of the fine-tuning API) | ray."),
    ] = "local",
) -> None:
    """Seed posts, collect, fine-tune, track in MLflow, evaluate offline, and summarise."""
    config = settings()
    if workspace is not None:
        config = config.model_copy(update={"workspace": workspace})
        get_settings.cache_clear()
    if backend not in (None, "local", "openai", "ray"):
        raise typer.BadParameter("choose local, openai or ray", param_hint="--backend")
    if backend is not None:
        training = config.training.model_copy(update={"backend": backend})
        config = config.model_copy(update={"training": training})
    if backend != "openai":
        _demo(config, posts, tenant)
        return
    from tuneloop.train.hosted.fake import fake_provider

    with fake_provider(config) as hosted:  # the fine-tuning API's fake, on loopback
        console.print(f"fine-tuning API (fake) [bold]{hosted.openai.base_url}[/]")
        _demo(hosted, posts, tenant)


def _demo(config: Settings, posts: int, tenant: str) -> None:
    started = time.monotonic()
    store = engine_for(config)
    console.rule("[bold]tuneloop demo")
    console.print(f"workspace [bold]{config.workspace.resolve()}[/]")
    if count_posts(store, tenant) < posts:
        _seed(config, tenant, posts)
    run = resumable_run(store, tenant) or start_run(store, config, tenant)
    console.print(f"pipeline run [bold]{run.id}[/]")
    status = execute(context_for(store, config, run, LiveReporter()), STEP_FUNCTIONS)
    _summary(store, config, tenant, run.id, status.value, time.monotonic() - started)
    if status.value == "failed":
        raise typer.Exit(1)


def _seed(config: Settings, tenant: str, posts: int) -> None:
    import os

    # The seed command reads settings from the environment: point it at this workspace.
    os.environ["TUNELOOP_WORKSPACE"] = str(config.workspace)
    get_settings.cache_clear()
    seed_posts(posts=posts, tenant=tenant, seed=7, weeks=4)


def _summary(
    store: Any, config: Settings, tenant: str, run_id: str, status: str, seconds: float
) -> None:
    from tuneloop.tracking import ui_command

    steps = {step.name: step.output or {} for step in repo.steps_of(store, tenant, run_id)}
    run = repo.get_run(store, tenant, run_id)
    table = Table(show_header=False, box=None)
    collected = steps.get("collect", {})
    counts = collected.get("counts", {})
    table.add_row(
        "dataset",
        f"{(run.dataset_id or '-')[:12]}: {counts.get('hook', 0)} hook + "
        f"{counts.get('body', 0)} body examples ({counts.get('train', 0)} train / "
        f"{counts.get('validation', 0)} validation) "
        f"from {collected.get('source_records', 0)} posts",
    )
    trained = steps.get("train", {})
    losses = trained.get("losses", [])
    if losses:
        first, last = ends(losses)
        table.add_row("loss curve", f"{sparkline(losses, width=50)}  {first:.2f} → {last:.2f}")
        table.add_row(
            "training",
            f"{len(losses)} steps, {trained.get('tokens_per_second') or 0:.0f} "
            f"tokens/s on {trained.get('device')}, {trained.get('seconds')}s",
        )
    evaluation = steps.get("evaluate", {})
    if evaluation:
        verdict = "passed" if evaluation.get("passed") else "gated"
        table.add_row(
            "offline eval",
            f"{verdict} vs {evaluation.get('reference')}: {evaluation.get('reason', '')}",
        )
    registered = steps.get("register", {})
    if registered:
        table.add_row(
            "registered",
            f"{registered.get('model_id')} version {registered.get('version')} "
            "(MLflow alias 'challenger')",
        )
    table.add_row("mlflow run", run.mlflow_run_id or "-")
    table.add_row("memory", f"initial {run.memory_initial_mb} MB, peak {run.memory_peak_mb} MB")
    table.add_row("took", f"{seconds:.0f}s, run status {status}")
    console.print(Panel(table, title="[bold green]what happened", title_align="left"))
    console.print("Open the MLflow UI on this run:")
    console.print(f"  [bold]{ui_command(config.mlflow_tracking_uri)}[/]", soft_wrap=True)
    if registered:
        console.print(
            f"Make it the first champion:  tuneloop models promote {registered.get('version')} "
            f"--tenant {tenant}"
        )
