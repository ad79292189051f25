"""``tuneloop demo``: the whole loop from nothing, on the embedded defaults and a manual clock.

Seed posts → first run → first champion (bootstrap) → fresh posts → second run → A/B test
created by the run → simulated traffic with a real lift through the real ingestion → the
sequential test decides → gradual rollout, tick by tick → champion flips in MLflow; then a
third candidate that degrades once rolled out is rolled back by its trigger. Everything
goes through the application layer (``app.runs``), as the worker does.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table

from tuneloop.app import runs as app_runs
from tuneloop.app.deployments import list_deployments
from tuneloop.app.models import champion
from tuneloop.app.posts import count_posts, write_posts
from tuneloop.app.simulation import Tick, drive_run, lift_for
from tuneloop.cli.common import console, settings
from tuneloop.cli.runs import LiveReporter, describe_decision
from tuneloop.config import Settings, get_settings
from tuneloop.domain.clock import ManualClock
from tuneloop.domain.runs import RunStatus
from tuneloop.pipeline.outputs import DecideOutput, ExperimentOutput, RolloutOutput
from tuneloop.posts.schema import PostIn
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts
from tuneloop.synthetic.serving import Behaviour
from tuneloop.wiring import Container, build_container

LIFT = 0.25  # the second candidate's true engagement lift in the simulated traffic
DEGRADED = Behaviour(engagement=0.05, error_rate=0.2)  # the third, once rolled out


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
    """The whole loop: train, A/B test, decide, roll out, promote; then a rollback."""
    if backend not in ("local", "openai", "ray"):
        raise typer.BadParameter("choose local, openai or ray", param_hint="--backend")
    config = _demo_settings(settings(), workspace)
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
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    container = build_container(config, clock=clock)
    clock.set(_resume_time(container, tenant, clock.now()))
    console.rule("[bold]tuneloop demo: the whole loop")
    console.print(f"workspace [bold]{config.workspace.resolve()}[/]")
    if count_posts(container.engine, tenant) < posts:
        _add_posts(container, tenant, posts, prefix="post", weeks=4, seed=1)
    ids: list[str] = []
    console.rule("1. first run: the first champion")
    ids.append(_run(container, tenant, trigger="manual"))
    console.rule("2. fresh posts arrive: a challenger, an A/B test, a gradual rollout")
    _add_posts(container, tenant, 400, prefix="fresh", weeks=1, seed=4)
    second = _run(container, tenant, trigger="data")
    ids.append(second)
    _drive(container, clock, tenant, second, degraded=None)
    console.rule("3. one more candidate: it degrades once rolled out")
    _add_posts(container, tenant, 1600, prefix="fresh", weeks=1, seed=3)
    third = _run(container, tenant, trigger="data")
    ids.append(third)
    _drive(container, clock, tenant, third, degraded=DEGRADED)
    _summary(container, tenant, ids, time.monotonic() - started)
    if any(app_runs.get_run(container.engine, tenant, i).status == "failed" for i in ids):
        raise typer.Exit(1)


def _resume_time(container: Container, tenant: str, now: datetime) -> datetime:
    """A demo run again in the same workspace goes on after the simulated days of the last
    one, so its rollouts never read the earlier demo's traffic as their own."""
    newest = list_deployments(container.engine, tenant, limit=1)
    if not newest:
        return now
    row = newest[0]
    seen = [t for t in (row.created_at, row.last_tick_at, row.finished_at) if t is not None]
    return max(now, max(seen) + timedelta(hours=1))


def _demo_settings(config: Settings, workspace: Path | None) -> Settings:
    """A 50/50 A/B test (the default 10 % takes longer to decide) and one epoch per run
    (three candidates train in the demo); everything else as configured."""
    if workspace is not None:
        config = config.model_copy(update={"workspace": workspace})
        get_settings.cache_clear()
    pipeline = config.pipeline.model_copy(update={"a_b_test_traffic_split": 0.5})
    training = config.training.model_copy(update={"epochs": config.training.epochs or 1})
    return config.model_copy(update={"pipeline": pipeline, "training": training})


def _add_posts(
    container: Container, tenant: str, n: int, *, prefix: str, weeks: int, seed: int
) -> None:
    # A fixed seed per batch and ids numbered after the posts already there: the same story
    # every time from an empty workspace (and fresh ids when the demo runs again in it).
    ids = f"{prefix}{count_posts(container.engine, tenant)}"
    spec = SyntheticSpec(posts=n, seed=seed, weeks=weeks, id_prefix=ids)
    # Posts arrive at the demo's (simulated) time: the data trigger and collection read them
    # at that clock, so fresh posts are fresh to them.
    # Fresh posts were written by the tenant's champion: each keeps the version that wrote it,
    # so `tuneloop datasets list` shows the share per source version (the seed has none).
    writer = champion(container.engine, tenant)
    source: dict[str, Any] = {}
    if writer is not None:
        source = {"source_model": writer.model_id, "source_version": writer.version}
    rows = (
        PostIn.model_construct(**(row | source))
        for row in generate_posts(spec, now=container.clock.now())
    )
    write_posts(container.engine, tenant, list(rows))
    console.print(f"{n} posts arrived; tenant {tenant} has {count_posts(container.engine, tenant)}")


def _run(container: Container, tenant: str, *, trigger: str) -> str:
    started = app_runs.start_or_continue(
        container, tenant=tenant, trigger=trigger, report=LiveReporter()
    )
    console.print(f"run [bold]{started.run.id}[/] ({trigger}): [bold]{started.status.value}[/]")
    return started.run.id


def _drive(
    container: Container,
    clock: ManualClock,
    tenant: str,
    run_id: str,
    *,
    degraded: Behaviour | None,
) -> None:
    run = app_runs.get_run(container.engine, tenant, run_id)
    if run.status != RunStatus.WAITING:
        return
    outputs = _outputs(container, tenant, run_id)
    experiment = ExperimentOutput.maybe(outputs)
    if experiment is None or experiment.candidate is None:
        return
    console.print(
        f"simulated clients: {experiment.candidate} earns {LIFT:+.0%} engagement"
        + ("; once rolled out its error rate jumps to 20%" if degraded else "")
    )
    behaviour = lift_for(experiment.candidate, lift=LIFT, degraded=degraded)

    def show(tick: Tick) -> None:
        served = ", ".join(f"{k} {v}" for k, v in sorted(tick.served.items()))
        acts = f" rollout: {', '.join(tick.rollout_actions)}" if tick.rollout_actions else ""
        console.print(
            f"  day {tick.number:>2} {tick.at:%m-%d %H:%M}  served {served}{acts} → "
            f"run {tick.run_status} ({tick.step or 'done'})",
            highlight=False,
        )

    final = drive_run(
        container, clock, tenant=tenant, run_id=run_id, behaviour=behaviour, on_tick=show
    )
    console.print(f"run [bold]{run_id}[/]: [bold]{final.value}[/]")


def _outputs(container: Container, tenant: str, run_id: str) -> dict[str, dict[str, Any]]:
    return {s.name: s.output or {} for s in app_runs.steps_of(container.engine, tenant, run_id)}


def _summary(container: Container, tenant: str, ids: list[str], seconds: float) -> None:
    from tuneloop.tracking import ui_command

    table = Table(show_header=False, box=None, padding=(0, 1))
    for run_id in ids:
        view = app_runs.status(container, tenant=tenant, pipeline_id=run_id)
        table.add_row(f"[bold]{run_id}[/]", f"{view.trigger} → [bold]{view.run_status}[/]")
        for line in _evidence(view.evidence, view.message):
            table.add_row("", line)
    champion = container.tracker.get_alias(tenant, "champion")
    found = f"{champion.name} v{champion.version}" if champion else "none"
    table.add_row("[bold]MLflow[/]", f"alias champion → {found}")
    console.print(Panel(table, title="[bold green]what happened", title_align="left"))
    console.print(f"took {seconds:.0f}s; simulated time moved to {container.clock.now():%Y-%m-%d}")
    console.print("Look closer:")
    for run_id in ids:
        console.print(f"  tuneloop runs show {run_id} --tenant {tenant}", highlight=False)
    console.print(f"  tuneloop experiments list --tenant {tenant}", highlight=False)
    console.print(f"  tuneloop deployments list --tenant {tenant}", highlight=False)
    uri = container.settings.mlflow_tracking_uri
    console.print(f"  {ui_command(uri)}", soft_wrap=True, highlight=False)


def _evidence(evidence: dict[str, dict[str, Any]], message: str | None) -> list[str]:
    lines = [message] if message else []
    decided = DecideOutput.maybe(evidence)
    if decided is not None:
        lines.append(f"A/B test {decided.ab_test_id}: {describe_decision(decided)}")
    rollout = RolloutOutput.maybe(evidence)
    if rollout is not None:
        shares: list[str] = []
        for event in rollout.timeline:  # traffic changes only (complete/completed repeat 100%)
            share = f"{event['traffic']:.0%}"
            if not shares or shares[-1] != share:
                shares.append(share)
        path = " → ".join(shares)
        lines.append(
            f"rollout {rollout.deployment_id} ({rollout.strategy}): {path}, {rollout.status}"
        )
        if rollout.triggers:
            lines.append(f"rolled back by trigger {', '.join(rollout.triggers)}")
    return lines
