"""``tuneloop deploy``, ``rollback``, ``deployments list|show|promote`` and ``rollout tick``."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table

from tuneloop.app import deployments
from tuneloop.app.runs import tick_rollouts
from tuneloop.cli.common import DEFAULT, TenantOption, console, container, engine
from tuneloop.experiments.service import ModelRef
from tuneloop.rollout.describe import describe_deployment
from tuneloop.rollout.safety import EvaluationResult

deployments_app = typer.Typer(help="Deployments: list, show, promote.", no_args_is_help=True)
rollout_app = typer.Typer(help="Rollout ticks (what the scheduler runs).", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
IdArgument = Annotated[str, typer.Argument(help="Deployment id, e.g. deploy-20250102-001.")]


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def deploy(
    model: Annotated[str, typer.Argument(help="MODEL@VERSION to deploy.")],
    ab_test: Annotated[str, typer.Option("--ab-test", help="The A/B test that recommends it.")],
    strategy: Annotated[
        str | None, typer.Option(help="immediate | gradual_rollout | canary (default: settings).")
    ] = None,
    initial_traffic: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="First share (default 0.1).")
    ] = None,
    increment_interval_hours: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Hold time of each step (default 24); shorten it for a trial, e.g. 0.5 "
            "(a step still waits for enough data).",
        ),
    ] = None,
    increment_percentage: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Added per step (default 0.1).")
    ] = None,
    max_traffic: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Share to stop at (default 1.0).")
    ] = None,
    tenant: TenantOption = DEFAULT,
    as_json: JsonOption = False,
) -> None:
    """Deploy a model version after its safety checks (evaluation, baseline, reachable)."""
    overrides = {
        "initial_traffic": initial_traffic,
        "increment_interval_hours": increment_interval_hours,
        "increment_percentage": increment_percentage,
        "max_traffic": max_traffic,
    }
    row = deployments.deploy(
        container(),
        tenant,
        model=ModelRef.parse(model),
        evaluation=EvaluationResult(ab_test),
        strategy=strategy,
        rollout={key: value for key, value in overrides.items() if value is not None},
        actor="cli",
    )
    _show(row.tenant_id, row.id, as_json=as_json)


def rollback(
    deployment_id: IdArgument,
    reason: Annotated[str, typer.Option(help="Why (kept in the record).")] = "rolled back by hand",
    tenant: TenantOption = DEFAULT,
    as_json: JsonOption = False,
) -> None:
    """Send all traffic back to the previous model and restore its champion alias."""
    deployments.rollback(container(), tenant, deployment_id, reason=reason, actor="cli")
    _show(tenant, deployment_id, as_json=as_json)


@deployments_app.command("list")
def list_command(
    tenant: TenantOption = DEFAULT,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: JsonOption = False,
) -> None:
    """Deployments, newest first."""
    rows = deployments.list_deployments(engine(), tenant, status=status, limit=limit)
    if as_json:
        _print_json([describe_deployment(row) for row in rows])
        return
    table = Table("id", "model", "strategy", "status", "traffic", "step", "previous", "created")
    for row in rows:
        table.add_row(
            row.id,
            f"{row.model_id}@{row.version}",
            row.strategy,
            row.status,
            f"{row.traffic:.0%}",
            str(row.step),
            f"{row.previous_model_id}@{row.previous_version}",
            row.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


@deployments_app.command("show")
def show_command(
    deployment_id: IdArgument, tenant: TenantOption = DEFAULT, as_json: JsonOption = False
) -> None:
    """One deployment: its state, last checks and audit trail."""
    _show(tenant, deployment_id, as_json=as_json)


@deployments_app.command("promote")
def promote_command(
    deployment_id: IdArgument,
    force: Annotated[
        bool, typer.Option(help="Promote even if checks are not all passing.")
    ] = False,
    tenant: TenantOption = DEFAULT,
    as_json: JsonOption = False,
) -> None:
    """Take a canary (or a rollout held at max_traffic) to 100% and make it champion."""
    deployments.promote(container(), tenant, deployment_id, force=force, actor="cli")
    _show(tenant, deployment_id, as_json=as_json)


@rollout_app.command("tick")
def tick_command(
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="Only this tenant (default: all).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Advance, hold or roll back every active deployment once (safe to run concurrently)."""
    outcomes = tick_rollouts(container(), tenant=tenant, actor="cli")
    if as_json:
        _print_json([asdict(outcome) for outcome in outcomes])
        return
    if not outcomes:
        console.print("no active deployments")
    for o in outcomes:
        console.print(
            f"{o.tenant_id}/{o.deployment_id}: [bold]{o.action}[/] -> {o.status} "
            f"at {o.traffic:.0%}: {'; '.join(o.reasons)}",
            highlight=False,
        )


def _show(tenant: str, deployment_id: str, *, as_json: bool) -> None:
    found = container()
    row = deployments.get_deployment(found.engine, tenant, deployment_id)
    stall = deployments.stall_after(found)
    data = deployments.deployment_view(found.engine, tenant, deployment_id, stall_after=stall)
    if as_json:
        _print_json(data)
        return
    console.print(
        f"[bold]{row.id}[/] {row.model_id}@{row.version} ({row.strategy}): "
        f"[bold]{row.status}[/] at {row.traffic:.0%}, step {row.step}; "
        f"rollback to {row.previous_model_id}@{row.previous_version}",
        highlight=False,
    )
    if row.reason:
        console.print(f"reason: {row.reason}", highlight=False)
    for check in row.last_checks or []:
        console.print(f"  {check['name']}: {check['verdict']}: {check['reason']}", highlight=False)
    if data["plan"]:
        console.print("plan (earliest times; each step also waits for its data):")
    for step in data["plan"]:
        advance = step["earliest_advance"] or "-"
        console.print(
            f"  step {step['step']} at {step['traffic']:.0%}: from {step['earliest_start']}, "
            f"advances at {advance} once: {'; '.join(step['waits_for'])}",
            highlight=False,
        )
    for event in data["events"]:
        console.print(
            f"  #{event['seq']} {event['at']} {event['kind']} "
            f"{event['from_traffic']:.0%} -> {event['to_traffic']:.0%} "
            f"({event['actor']}): {'; '.join(event['reasons'])}",
            highlight=False,
        )
