"""``tuneloop experiments`` (create, list, show, start, stop, analyze) and ``simulate-traffic``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from tuneloop.app import experiments
from tuneloop.app.experiments import Experiment
from tuneloop.app.simulation import simulate_traffic as simulate
from tuneloop.cli.common import DEFAULT, TenantOption, console, engine, settings
from tuneloop.config import get_settings
from tuneloop.domain.experiments import METRICS, ArmSpec, SuccessCriteria
from tuneloop.errors import InvalidInputError
from tuneloop.events.ingest import IngestReport
from tuneloop.experiments.references import parse_reference
from tuneloop.experiments.report import ExperimentReport, Method
from tuneloop.experiments.service import ModelRef, describe_experiment
from tuneloop.synthetic.traffic import TrafficSpec
from tuneloop.wiring import servable_for

app = typer.Typer(help="A/B tests of a candidate model against the baseline.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
KeyArgument = Annotated[str, typer.Argument(help="Experiment key, e.g. ab-test-20250102-001.")]


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@app.command("create")
def create_command(
    baseline: Annotated[
        str, typer.Option(help="Baseline model: MODEL@VERSION, or MODEL for its champion.")
    ],
    candidate: Annotated[
        list[str],
        typer.Option(help="Candidate model (MODEL@VERSION, registered); repeat for more arms."),
    ],
    split: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of traffic for the candidates, together.")
    ] = 0.1,
    weights: Annotated[
        str | None, typer.Option(help="Explicit weights, baseline first: '0.5,0.25,0.25'.")
    ] = None,
    duration_hours: Annotated[int, typer.Option(min=1)] = 168,
    min_engagement_lift: Annotated[float, typer.Option()] = 0.15,
    min_cost_efficiency_gain: Annotated[float, typer.Option()] = 0.10,
    significance: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.05,
    stats_engine: Annotated[
        str, typer.Option("--engine", help="Statistics engine: frequentist or bayesian.")
    ] = "frequentist",
    correction: Annotated[
        str, typer.Option(help="none, holm-bonferroni or benjamini-hochberg (across arms).")
    ] = "none",
    min_chance_to_win: Annotated[float, typer.Option(min=0.5, max=1.0)] = 0.95,
    max_risk: Annotated[float, typer.Option(min=0.0)] = 0.01,
    key: Annotated[str | None, typer.Option(help="Key to use (default: ab-test-DATE-NNN).")] = None,
    draft: Annotated[bool, typer.Option(help="Create without starting it.")] = False,
    tenant: TenantOption = DEFAULT,
    as_json: JsonOption = False,
) -> None:
    """Create an experiment (running unless --draft)."""
    servable = servable_for(get_settings())
    references = [parse_reference(text) for text in (baseline, *candidate)]
    models = experiments.resolve_models(engine(), tenant, references, servable)
    arms = _arms(models, split, weights)
    criteria = SuccessCriteria(
        min_engagement_lift,
        min_cost_efficiency_gain,
        significance,
        stats_engine=_choice(stats_engine, ("frequentist", "bayesian"), "--engine"),
        min_chance_to_win=min_chance_to_win,
        max_risk=max_risk,
        correction=_choice(
            correction, ("none", "holm-bonferroni", "benjamini-hochberg"), "--correction"
        ),
    )
    row = experiments.create_experiment(
        engine(),
        tenant,
        arms=arms,
        duration_hours=duration_hours,
        criteria=criteria,
        key=key,
        start=not draft,
        upstreams=settings().serving.upstreams,
    )
    if as_json:
        _print_json(describe_experiment(row))
        return
    console.print(f"experiment [bold]{row.key}[/] is [bold]{row.status}[/]")
    _print_experiment(row)


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    if value not in allowed:
        raise InvalidInputError(f"{option} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _arms(models: list[ModelRef], split: float, weights: str | None) -> list[ArmSpec]:
    names = (
        ["baseline", "candidate"]
        if len(models) == 2
        else ["baseline", *(f"candidate-{index}" for index in range(1, len(models)))]
    )
    if weights is None:
        share = split / (len(models) - 1)
        values = [1.0 - split, *([share] * (len(models) - 1))]
    else:
        try:
            values = [float(part) for part in weights.split(",")]
        except ValueError:
            raise InvalidInputError(
                f"--weights must be numbers separated by commas: {weights!r}"
            ) from None
        if len(values) != len(models):
            raise InvalidInputError(f"{len(values)} weights for {len(models)} arms")
    return [
        ArmSpec(name, model.model_id, model.version, weight)
        for name, model, weight in zip(names, models, values, strict=True)
    ]


@app.command("list")
def list_command(
    tenant: TenantOption = DEFAULT,
    status: Annotated[str | None, typer.Option(help="Only experiments in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: JsonOption = False,
) -> None:
    """List experiments, newest first."""
    rows = experiments.list_experiments(engine(), tenant, status=status, limit=limit)
    if as_json:
        _print_json([describe_experiment(row) for row in rows])
        return
    table = Table(
        Column("key", no_wrap=True), "status", "candidate", "split", "started", "decision"
    )
    for row in rows:
        started = row.started_at.strftime("%Y-%m-%d %H:%M") if row.started_at else "-"
        table.add_row(
            row.key,
            row.status,
            f"{row.candidate_model_id}@{row.candidate_version}",
            f"{row.traffic_split:.0%}",
            started,
            row.decision or "-",
        )
    console.print(table)


@app.command("show")
def show_command(
    key: KeyArgument, tenant: TenantOption = DEFAULT, as_json: JsonOption = False
) -> None:
    """Show one experiment: arms, criteria, times, decision."""
    row = experiments.get_experiment(engine(), tenant, key)
    if as_json:
        _print_json(describe_experiment(row))
        return
    console.print(f"[bold]{row.key}[/]  {row.status}")
    _print_experiment(row)


def _print_experiment(row: Experiment) -> None:
    arms = Table("arm", "model", "version", "weight", title="arms", title_justify="left")
    for arm in row.arms:
        arms.add_row(arm["name"], arm["model_id"], arm["version"], f"{arm['weight']:.2%}")
    console.print(arms)
    info = describe_experiment(row)
    details = Table(show_header=False, box=None)
    for label in ("duration_hours", "start_time", "estimated_end_time", "end_time", "decision"):
        details.add_row(label, str(info[label] if info[label] is not None else "-"))
    details.add_row("success_criteria", json.dumps(row.success_criteria))
    for reason in row.decision_reasons or []:
        details.add_row("", f"- {reason}")
    console.print(details)


@app.command("start")
def start_command(key: KeyArgument, tenant: TenantOption = DEFAULT) -> None:
    """Start a draft experiment."""
    row = experiments.start_experiment(engine(), tenant, key)
    console.print(f"experiment [bold]{row.key}[/] is [bold]{row.status}[/]")


@app.command("stop")
def stop_command(
    key: KeyArgument, tenant: TenantOption = DEFAULT, as_json: JsonOption = False
) -> None:
    """Stop an experiment (events still arriving are kept; it can be decided later)."""
    row = experiments.stop_experiment(engine(), tenant, key)
    if as_json:
        _print_json(describe_experiment(row))
        return
    console.print(f"experiment [bold]{row.key}[/] is [bold]{row.status}[/]")


@app.command("analyze")
def analyze_command(
    key: KeyArgument,
    tenant: TenantOption = DEFAULT,
    method: Annotated[
        str, typer.Option(help="sequential (valid at any look) or fixed (read once at the end).")
    ] = "sequential",
    record: Annotated[bool, typer.Option(help="Record a promote/reject decision.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Per-arm metrics, the comparison with the baseline, SRM and the recommendation."""
    if method not in ("sequential", "fixed"):
        raise InvalidInputError(f"--method must be sequential or fixed, got {method!r}")
    analysis = experiments.analyze(engine(), tenant, key, method=_method(method), record=record)
    report, recorded = analysis.report, analysis.recorded
    if as_json:
        _print_json({**report.to_json(), "recorded": recorded is not None})
        return
    _print_report(report)
    if recorded is not None:
        console.print(
            f"recorded: experiment is now [bold]{recorded.status}[/] ({recorded.decision})"
        )
    elif record:
        console.print("not recorded: the recommendation is to continue")


def _method(text: str) -> Method:
    return "fixed" if text == "fixed" else "sequential"


def _print_report(report: ExperimentReport) -> None:
    console.print(
        f"[bold]{report.key}[/]  {report.status}, hour {report.elapsed_hours:.1f} "
        f"of {report.planned_hours:.0f}"
    )
    arms = Table("arm", "model", "weight", "exposed units", title="arms", title_justify="left")
    for arm in report.arms:
        arms.add_row(
            arm.spec.name,
            f"{arm.spec.model_id}@{arm.spec.version}",
            f"{arm.spec.weight:.0%}",
            str(arm.exposed_units),
        )
    console.print(arms)
    metrics = Table(
        "metric",
        *(arm.spec.name for arm in report.arms),
        title="mean per unit (n)",
        title_justify="left",
    )
    for metric in METRICS:
        metrics.add_row(
            metric,
            *(_mean_cell(arm.metrics[metric].mean, arm.metrics[metric].n) for arm in report.arms),
        )
    console.print(metrics)
    console.print(_comparison_table(report))
    srm = report.srm
    verdict = "[green]ok[/]" if srm.passed else "[red]MISMATCH[/]"
    shown = "-" if srm.p_value is None else f"{srm.p_value:.4g}"
    console.print(f"SRM (exposed units vs planned weights): p = {shown} {verdict}")
    colour = {"promote": "green", "reject": "red"}.get(report.recommendation, "yellow")
    console.print(f"recommendation: [bold {colour}]{report.recommendation}[/] ({report.headline})")
    for reason in report.reasons:
        console.print(f"  - {reason}", highlight=False)


def _mean_cell(mean: float | None, n: int) -> str:
    return "-" if mean is None else f"{mean:.4g} (n={n})"


def _comparison_table(report: ExperimentReport) -> Table:
    level = f"{1 - report.alpha:.0%} interval"
    table = Table(
        "metric",
        "arm",
        "change",
        level,
        "p-value",
        "significant",
        title="against the baseline (relative %, error rate in points)",
        title_justify="left",
    )
    for metric, result in report.analyses.items():
        # Relative differences are fractions; the error rate's absolute one is a rate.
        scale, unit = (100.0, "%") if result.difference == "relative" else (100.0, " pt")
        for comparison in result.comparisons:
            table.add_row(
                metric,
                comparison.arm,
                _estimate(comparison.error, comparison.estimate, scale, unit),
                _interval(comparison.ci, scale, unit),
                _evidence(comparison.p_value, comparison.chance_to_win),
                "yes" if comparison.significant else "no",
            )
    return table


def _evidence(p_value: float | None, chance_to_win: float | None) -> str:
    """The p-value, or a Bayesian result's chance to win."""
    if chance_to_win is not None:
        return f"win {chance_to_win:.1%}"
    return "-" if p_value is None else f"{p_value:.3g}"


def _estimate(error: str | None, estimate: float | None, scale: float, unit: str) -> str:
    if error is not None or estimate is None:
        return error or "-"
    return f"{estimate * scale:+.2f}{unit}"


def _interval(ci: tuple[float | None, float | None] | None, scale: float, unit: str) -> str:
    if ci is None:
        return "-"
    low = "-inf" if ci[0] is None else f"{ci[0] * scale:+.2f}"
    high = "+inf" if ci[1] is None else f"{ci[1] * scale:+.2f}"
    return f"{low}..{high}{unit}"


def simulate_traffic(
    key: KeyArgument,
    tenant: TenantOption = DEFAULT,
    units: Annotated[int, typer.Option(min=1, help="Units (users) to simulate.")] = 10_000,
    lift: Annotated[float, typer.Option(min=-0.99, help="True relative engagement lift.")] = 0.10,
    base_rate: Annotated[float, typer.Option(min=0.0, help="Baseline mean engagement.")] = 0.05,
    noise: Annotated[float, typer.Option(min=0.0, help="Log-normal sigma of engagement.")] = 0.5,
    posts_per_unit: Annotated[int, typer.Option(min=1)] = 1,
    cost_change: Annotated[float, typer.Option(help="Relative cost-per-token change.")] = 0.0,
    latency_change: Annotated[float, typer.Option(help="Relative latency change.")] = 0.0,
    error_rate: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.01,
    seed: Annotated[
        int, typer.Option(help="Same seed, same events (re-running adds nothing).")
    ] = 7,
    as_json: JsonOption = False,
) -> None:
    """Simulate exposures, generations and outcomes for a running experiment (demos, tests)."""
    spec = TrafficSpec(
        experiment_key=key,
        arms=(),
        units=units,
        seed=seed,
        base_rate=base_rate,
        lift=lift,
        noise=noise,
        posts_per_unit=posts_per_unit,
        cost_change=cost_change,
        latency_change=latency_change,
        error_rate=error_rate,
    )
    report = simulate(engine(), tenant, key, spec=spec)
    if as_json:
        _print_json(report.to_json())
        return
    _print_ingest(report)


def _print_ingest(report: IngestReport) -> None:
    console.print(
        f"{report.received} events: [green]{report.accepted} accepted[/], "
        f"{report.duplicates} duplicates, [red]{report.rejected} rejected[/]"
    )
    for problem in report.problems[:20]:
        console.print(f"  - {problem}", highlight=False)
