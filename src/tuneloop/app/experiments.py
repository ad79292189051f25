"""A/B test use cases: create (and start), list, look at, start, stop, analyze, decide.

``/evaluation``, ``tuneloop experiments`` and the dashboard call these; the rules live in
``tuneloop.experiments.service`` (ownership, transitions, the report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from tuneloop.config import UpstreamSettings
from tuneloop.domain.experiments import ArmSpec, SuccessCriteria
from tuneloop.events.report_cache import ReportCache
from tuneloop.experiments import service
from tuneloop.experiments.references import Servable, resolve_model
from tuneloop.experiments.report import ExperimentReport, Method
from tuneloop.experiments.service import ModelRef, describe_experiment, two_arms
from tuneloop.store.experiment_models import Experiment
from tuneloop.store.experiments import experiments_page

__all__ = [
    "AbTestPage",
    "Analysis",
    "Experiment",
    "ab_test_page",
    "analyze",
    "create_ab_test",
    "create_experiment",
    "describe_experiment",
    "experiment_metrics",
    "get_experiment",
    "list_experiments",
    "resolve_models",
    "start_experiment",
    "stop_experiment",
]


@dataclass(frozen=True)
class AbTestPage:
    items: Sequence[Experiment]
    total: int
    limit: int
    offset: int


def resolve_models(
    engine: Engine,
    tenant_id: str,
    references: Sequence[tuple[str, str | None]],
    servable: Servable,
) -> list[ModelRef]:
    """Each ``(model_id, version or None for the champion)`` resolved within the tenant."""
    return [ModelRef(*resolve_model(engine, tenant_id, *ref, servable)) for ref in references]


def create_experiment(
    engine: Engine,
    tenant_id: str,
    *,
    arms: Sequence[ArmSpec],
    duration_hours: int,
    criteria: SuccessCriteria,
    key: str | None = None,
    start: bool = True,
    upstreams: Mapping[str, UpstreamSettings] | None = None,
) -> Experiment:
    """An experiment over ``arms`` (running unless ``start`` is false); its key is generated
    when not given. 409 while a rollout owns the tenant's traffic, or for a duplicate."""
    return service.create_experiment(
        engine,
        tenant_id,
        arms=arms,
        duration_hours=duration_hours,
        success_criteria=criteria,
        key=key,
        start=start,
        upstreams=upstreams,
    )


def create_ab_test(
    engine: Engine,
    tenant_id: str,
    *,
    baseline: tuple[str, str | None],
    candidate: tuple[str, str | None],
    servable: Servable,
    traffic_split: float,
    duration_hours: int,
    criteria: SuccessCriteria,
    upstreams: Mapping[str, UpstreamSettings] | None = None,
) -> Experiment:
    """A two-arm test that starts running at once (as ``tuneloop experiments create``);
    both models are resolved within the tenant first (``experiments.references``)."""
    models = resolve_models(engine, tenant_id, [baseline, candidate], servable)
    return create_experiment(
        engine,
        tenant_id,
        arms=two_arms(models[0], models[1], traffic_split),
        duration_hours=duration_hours,
        criteria=criteria,
        upstreams=upstreams,
    )


def ab_test_page(engine: Engine, tenant_id: str, *, limit: int, offset: int) -> AbTestPage:
    """One page of the tenant's A/B tests, newest first, with their total (one
    transaction)."""
    items, total = experiments_page(engine, tenant_id, limit=limit, offset=offset)
    return AbTestPage(items, total, limit, offset)


def list_experiments(
    engine: Engine,
    tenant_id: str,
    *,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Sequence[Experiment]:
    """Newest first, of one status or all."""
    return service.list_experiments(engine, tenant_id, status=status, limit=limit, offset=offset)


def get_experiment(engine: Engine, tenant_id: str, key: str) -> Experiment:
    return service.get_experiment(engine, tenant_id, key)


def start_experiment(engine: Engine, tenant_id: str, key: str) -> Experiment:
    """Start a draft; refused while a rollout owns the tenant's traffic."""
    return service.start_experiment(engine, tenant_id, key)


def stop_experiment(engine: Engine, tenant_id: str, key: str) -> Experiment:
    """Stop taking traffic; events still arriving are kept."""
    return service.stop_experiment(engine, tenant_id, key)


@dataclass(frozen=True)
class Analysis:
    report: ExperimentReport
    recorded: Experiment | None  # the decided row, when asked to record and not "continue"


def analyze(
    engine: Engine, tenant_id: str, key: str, *, method: Method, record: bool = False
) -> Analysis:
    """The experiment's report; with ``record``, a promote or reject recommendation closes
    the experiment with that decision (continue records nothing)."""
    report = service.analyze_experiment(engine, tenant_id, key, method=method)
    recorded = None
    if record and report.recommendation != "continue":
        recorded = service.record_decision(
            engine, tenant_id, key, recommendation=report.recommendation, reasons=report.reasons
        )
    return Analysis(report, recorded)


def experiment_metrics(
    engine: Engine, reports: ReportCache, tenant_id: str, ab_test_id: str
) -> dict[str, Any]:
    """The report's JSON, cached until new events are written or the status changes."""
    experiment = service.get_experiment(engine, tenant_id, ab_test_id)  # NotFound for the tenant
    version = f"{experiment.status}:{experiment.decision}"

    def compute() -> dict[str, Any]:
        return service.analyze_experiment(engine, tenant_id, ab_test_id).to_json()

    found: dict[str, Any] = reports.get_or_compute(tenant_id, ab_test_id, version, compute)
    return found
