"""``tuneloop run`` and ``tuneloop runs``: execute, continue, inspect and abort pipeline runs."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from tuneloop.cli.charts import ends, sparkline
from tuneloop.cli.common import DEFAULT, TenantOption, console, engine, err_console, settings
from tuneloop.domain.runs import RunStatus, Trigger
from tuneloop.pipeline.context import RunContext
from tuneloop.pipeline.runner import execute
from tuneloop.pipeline.service import abort_run, context_for, resumable_run, start_run
from tuneloop.pipeline.steps import STEP_FUNCTIONS
from tuneloop.store import runs as repo

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
    if step == "collect":
        counts = output.get("counts", {})
        split = f"{counts.get('train', 0)} train / {counts.get('validation', 0)} val"
        return f"{output.get('message', '')} — {split}"
    if step == "train":
        loss, seconds = output.get("train_loss", float("nan")), output.get("seconds", 0)
        return f"final loss {loss:.3f} in {seconds:.0f}s"
    if step == "register":
        return f"{output.get('model_id')} v{output.get('version')} (alias challenger)"
    if step == "evaluate":
        verdict = "passed" if output.get("passed") else "gated"
        return f"{verdict} vs {output.get('reference', 'reference')}: {output.get('reason', '')}"
    return ""


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
    """Run the pipeline, or continue the interrupted (or failed) run from its last finished step.

    SIGTERM or Ctrl-C stops it at the next safe point (training: its next optimizer step)
    and keeps it resumable: run this command again to continue it. Exits 0 when the run
    finishes (succeeded, not enough data, gated, aborted), 1 when it failed, 128 + signal
    when it was interrupted.
    """
    config, store = settings(), engine()
    existing = resumable_run(store, tenant, include_failed=not new)
    if existing is not None:
        done = [
            s.name for s in repo.steps_of(store, tenant, existing.id) if s.status == "succeeded"
        ]
        console.print(
            f"continuing run [bold]{existing.id}[/] (done: {', '.join(done) or 'nothing yet'})"
        )
        target = existing
    else:
        target = start_run(store, config, tenant, trigger=trigger, force_run=force)
        console.print(f"started run [bold]{target.id}[/]")
    ctx = context_for(store, config, target, LiveReporter())
    with interrupt_on_signals(ctx) as received:
        status = execute(ctx, STEP_FUNCTIONS)
    final = repo.get_run(store, tenant, target.id)
    if status == RunStatus.RUNNING:  # interrupted: kept, with its checkpoints, for later
        console.print(
            f"run [bold]{final.id}[/] [yellow]interrupted[/] ({ctx.interrupt_reason}); "
            "`tuneloop run` continues it"
        )
        raise typer.Exit(128 + received[0] if received else 1)
    style = {"succeeded": "green", "failed": "red", "aborted": "yellow"}.get(status.value, "yellow")
    console.print(
        f"run [bold]{final.id}[/] [{style}]{status.value}[/]"
        + (f": {final.error}" if final.error else "")
    )
    if status.value == "failed":
        raise typer.Exit(1)


@contextmanager
def interrupt_on_signals(ctx: RunContext) -> Iterator[list[int]]:
    """SIGTERM (a pod eviction, ``systemctl stop``) or a first Ctrl-C interrupts the run at
    its next safe point and keeps it resumable; a second Ctrl-C stops at once. Yields the
    signals received, so the command can exit 128 + signal like a killed process."""
    received: list[int] = []

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
    rows, total = repo.list_runs(engine(), tenant, limit=limit)
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
    row = repo.get_run(store, tenant, run_id)
    console.print(
        f"[bold]{row.id}[/]  {row.status}  trigger={row.trigger}  "
        f"created {row.created_at:%Y-%m-%d %H:%M:%S}"
    )
    if row.error:
        console.print(f"[red]error:[/] {row.error}")
    table = Table("step", "status", "attempts", "summary")
    losses: list[float] = []
    for step in repo.steps_of(store, tenant, run_id):
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


@app.command("abort")
def abort_command(
    run_id: str,
    tenant: TenantOption = DEFAULT,
    reason: Annotated[str, typer.Option(help="Recorded with the run.")] = "user_requested",
) -> None:
    """Abort an active run: training stops, temporary files and partial artifacts are removed."""
    report = abort_run(engine(), settings(), tenant, run_id, reason=reason)
    console.print(
        f"run {report.run_id} {report.status}; cleanup {report.cleanup_status}: "
        f"{', '.join(report.resources_cleaned) or 'nothing to clean'}"
    )
