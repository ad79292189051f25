"""``tuneloop run`` and ``tuneloop runs``: execute, continue, inspect and abort pipeline runs."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from tuneloop.cli.charts import ends, sparkline
from tuneloop.cli.common import DEFAULT, TenantOption, console, container, engine, err_console
from tuneloop.domain.runs import RunStatus, Trigger
from tuneloop.lazy import LazyModule

if TYPE_CHECKING:
    from tuneloop.app import runs as app_runs
    from tuneloop.pipeline import outputs
    from tuneloop.pipeline.context import RunContext
else:
    # Imported when a command first uses them, not for `tuneloop runs --help`: the run use
    # cases import the whole pipeline (its services, SQLAlchemy, numpy; ~0.6 s), the step
    # outputs build their pydantic models (~0.07 s).
    app_runs = LazyModule("tuneloop.app.runs")
    outputs = LazyModule("tuneloop.pipeline.outputs")

app = typer.Typer(help="Pipeline runs: list, show, abort.", no_args_is_help=True)


class LiveReporter:
    """Prints step transitions and draws a training progress bar with the current loss."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.task: Any = None
        self.losses: list[float] = []

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "step_started":
            console.print(f"[bold cyan]▶ {data['step']}[/] (attempt {data['attempt']})")
        elif kind == "train_step":
            self._train_step(data)
        elif kind == "step_finished":
            self._close_bar()
            console.print(f"[green]✓ {data['step']}[/] {summary_of(data['step'], data['output'])}")
        elif kind == "run_finished":
            self._close_bar()
        elif kind == "run_waiting":
            self._close_bar()
            why = data.get("error") or summary_of(data["step"], data["output"])
            console.print(f"[yellow]… {data['step']}[/] {why}")
        elif kind == "message":
            console.print(data["text"])

    def _train_step(self, data: dict[str, Any]) -> None:
        self.losses.append(float(data["loss"]))
        if self.progress is None:
            self.progress = Progress(
                TextColumn("  training"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.3f}"),
                TimeElapsedColumn(),
                console=err_console,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=data.get("total"), loss=data["loss"])
        self.progress.update(self.task, completed=data["step"], loss=data["loss"])

    def _close_bar(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def summary_of(step: str, output: dict[str, Any]) -> str:
    """One line per step, read through the step's output type."""
    if not output:
        return ""
    named = {step: output}
    if step == "collect":
        c = outputs.CollectOutput.of(named)
        split = f"{c.counts.get('train', 0)} train / {c.counts.get('validation', 0)} val"
        return f"{c.message} — {split}"
    if step == "train":
        t = outputs.TrainOutput.of(named)
        return f"final loss {t.train_loss or float('nan'):.3f} in {t.seconds or 0:.0f}s"
    if step == "register":
        r = outputs.RegisterOutput.of(named)
        return f"{r.model_id} v{r.version} (alias challenger)"
    if step == "evaluate":
        e = outputs.EvaluateOutput.of(named)
        return f"{'passed' if e.passed else 'gated'} vs {e.reference}: {e.reason}"
    if step == "experiment":
        x = outputs.ExperimentOutput.of(named)
        if x.bootstrap:
            waits = f"; waiting for `{x.waiting_for}`" if x.waiting_for else ""
            return f"no champion yet: bootstrap {x.bootstrap} of {x.candidate}{waits}"
        share = x.traffic_split or 0.0
        return (
            f"A/B test {x.ab_test_id}: {x.baseline} vs {x.candidate} "
            f"({share:.0%} candidate, {x.duration_hours} h)"
        )
    if step == "decide":
        return describe_decision(outputs.DecideOutput.of(named))
    if step == "rollout":
        o = outputs.RolloutOutput.of(named)
        fired = f", trigger {', '.join(o.triggers)}" if o.triggers else ""
        return f"{o.deployment_id} {o.strategy}: {o.status} at {o.traffic:.0%}{fired}"
    return ""


def describe_decision(d: outputs.DecideOutput) -> str:
    """The A/B test's verdict with its evidence: lift, interval, SRM, sample sizes."""
    lift = "n/a" if d.lift is None else f"{d.lift:+.1%}"
    interval = (
        f" CI [{d.ci_low:+.1%}, {d.ci_high:+.1%}]"
        if d.ci_low is not None and d.ci_high is not None
        else ""
    )
    srm = "SRM ok" if d.srm_ok else "SRM mismatch"
    units = " / ".join(f"{k} {v}" for k, v in d.sample_sizes.items())
    return (
        f"{d.recommendation}: lift {lift}{interval}, {srm}, {units} units, "
        f"{d.elapsed_hours:.0f}/{d.planned_hours:.0f} h"
    )


def run(
    tenant: TenantOption = DEFAULT,
    force: Annotated[
        bool, typer.Option("--force", help="Run even below the data threshold.")
    ] = False,
    trigger: Annotated[Trigger, typer.Option(help="What started this run.")] = Trigger.MANUAL,
    new: Annotated[
        bool, typer.Option("--new", help="Start a new run even if the last one failed.")
    ] = False,
) -> None:
    """Run the loop, or continue the interrupted, waiting (or failed) run where it stands.

    The run goes as far as it can now: to its end, or to its A/B test or rollout, where it
    waits (the worker, or `tuneloop runs advance`, checks it again). SIGTERM or Ctrl-C stops
    it at the next safe point (training: its next optimizer step) and keeps it resumable:
    run this command again to continue it. Exits 0 when the run ends or waits, 1 when it
    failed, 128 + signal when it was interrupted.
    """
    received: list[int] = []
    contexts: list[RunContext] = []

    def on_signals(ctx: RunContext) -> Any:
        contexts.append(ctx)
        return interrupt_on_signals(ctx, received)

    found = container()
    active = app_runs.active_run(found, tenant=tenant)
    if active is not None:
        console.print(f"continuing run [bold]{active.id}[/] ({active.status})")
    started = app_runs.start_or_continue(
        found,
        tenant=tenant,
        trigger=trigger.value,
        force=force,
        new=new,
        report=LiveReporter(),
        around=on_signals,
    )
    final, status = started.run, started.status
    if started.continued and active is None:
        console.print(f"continued failed run [bold]{final.id}[/]")
    if status == RunStatus.RUNNING:  # interrupted: kept, with its checkpoints, for later
        why = contexts[0].interrupt_reason if contexts else "interrupted"
        console.print(
            f"run [bold]{final.id}[/] [yellow]interrupted[/] ({why}); `tuneloop run` continues it"
        )
        raise typer.Exit(128 + received[0] if received else 1)
    style = {"promoted": "green", "succeeded": "green", "failed": "red"}.get(status.value, "yellow")
    console.print(
        f"run [bold]{final.id}[/] [{style}]{status.value}[/]"
        + (f": {final.error}" if final.error else "")
    )
    if status == RunStatus.WAITING:
        console.print("the worker (or `tuneloop runs advance`) checks it again")
    if status.value == "failed":
        raise typer.Exit(1)


@contextmanager
def interrupt_on_signals(ctx: RunContext, received: list[int]) -> Iterator[list[int]]:
    """SIGTERM (a pod eviction, ``systemctl stop``) or a first Ctrl-C interrupts the run at
    its next safe point and keeps it resumable; a second Ctrl-C stops at once. Yields the
    signals received, so the command can exit 128 + signal like a killed process."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)
        name = signal.Signals(signum).name
        ctx.interrupt(name)
        err_console.print(
            f"[yellow]{name}: stopping at the next safe point; the run stays resumable "
            "(Ctrl-C again to stop at once)[/]"
        )

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command("list")
def list_command(
    tenant: TenantOption = DEFAULT,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """List runs, newest first (full ids, whatever the terminal's width)."""
    rows, total = app_runs.list_runs(engine(), tenant, limit=limit)
    if as_json:
        items = [
            {
                "run_id": row.id,
                "status": row.status,
                "trigger": row.trigger,
                "current_step": row.current_step,
                "dataset_id": row.dataset_id,
                "model_version": row.model_version,
                "error": row.error,
                "created_at": row.created_at.isoformat(),
                "memory_peak_mb": row.memory_peak_mb,
            }
            for row in rows
        ]
        console.print_json(data={"items": items, "total": total})
        return
    table = Table(
        Column("run", no_wrap=True, min_width=max((len(row.id) for row in rows), default=3)),
        "status",
        "trigger",
        "step",
        "dataset",
        "model",
        "created",
        "peak MB",
        title=f"{len(rows)} of {total} runs",
        title_justify="left",
    )
    for row in rows:
        table.add_row(
            row.id,
            row.status,
            row.trigger,
            row.current_step or "",
            (row.dataset_id or "")[:12],
            row.model_version or "",
            row.created_at.strftime("%Y-%m-%d %H:%M"),
            f"{row.memory_peak_mb:.0f}" if row.memory_peak_mb else "",
        )
    console.print(table, crop=False)  # ids in full, even past the width


@app.command("show")
def show_command(run_id: str, tenant: TenantOption = DEFAULT) -> None:
    """Show a run: its steps, outputs, memory, errors and loss curve."""
    store = engine()
    row = app_runs.get_run(store, tenant, run_id)
    console.print(
        f"[bold]{row.id}[/]  {row.status}  trigger={row.trigger}  "
        f"created {row.created_at:%Y-%m-%d %H:%M:%S}"
    )
    if row.error:
        console.print(f"[red]error:[/] {row.error}")
    table = Table("step", "status", "attempts", "summary")
    losses: list[float] = []
    for step in app_runs.steps_of(store, tenant, run_id):
        output = step.output or {}
        losses = output.get("losses", losses) if step.name == "train" else losses
        table.add_row(
            step.name,
            step.status,
            str(step.attempts),
            summary_of(step.name, output) if step.output else (step.error or ""),
        )
    console.print(table)
    if losses:
        first, last = ends(losses)
        console.print(
            f"loss  {sparkline(losses)}  {first:.3f} → {last:.3f} (first/last 10% of steps)"
        )
    if row.memory_peak_mb is not None:
        console.print(
            f"memory  initial {row.memory_initial_mb} MB, peak {row.memory_peak_mb} MB, "
            f"final {row.memory_final_mb} MB"
        )
    if row.cleanup:
        console.print(f"cleanup  {row.cleanup}")
    view = app_runs.status(container(), tenant=tenant, pipeline_id=run_id)
    console.print(
        "progress  " + ", ".join(f"{k} {v}" for k, v in view.progress.items()), highlight=False
    )
    if view.message:
        console.print(f"why  {view.message}", highlight=False)
    rollout = outputs.RolloutOutput.maybe(view.evidence)
    for event in rollout.timeline if rollout is not None else []:
        console.print(
            f"  {event['at'][:16]} {event['kind']:<11} traffic {event['traffic']:.0%}  "
            + "; ".join(event.get("reasons") or []),
            highlight=False,
        )


@app.command("advance")
def advance_command() -> None:
    """Check every waiting run once (A/B tests, rollouts) — what the worker does each tick."""
    found = container()
    ticks = app_runs.tick_rollouts(found)
    for o in ticks:
        console.print(f"rollout {o.tenant_id}/{o.deployment_id}: {o.action} -> {o.status}")
    advanced = app_runs.advance_runs(found)
    for a in advanced:
        console.print(f"run {a.tenant_id}/{a.run_id}: {a.status} ({a.step or 'done'})")
    if not ticks and not advanced:
        console.print("no waiting runs and no active rollouts")


@app.command("abort")
def abort_command(
    run_id: str,
    tenant: TenantOption = DEFAULT,
    reason: Annotated[str, typer.Option(help="Recorded with the run.")] = "user_requested",
) -> None:
    """Abort an active run: training stops, temporary files and partial artifacts are removed."""
    report = app_runs.abort(container(), tenant=tenant, pipeline_id=run_id, reason=reason)
    console.print(
        f"run {report.run_id} {report.status}; cleanup {report.cleanup_status}: "
        f"{', '.join(report.resources_cleaned) or 'nothing to clean'}"
    )
