"""What ``GET /evaluation/metrics`` calls: the experiment's report, through the report cache."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from tuneloop.events.report_cache import ReportCache
from tuneloop.experiments.service import analyze_experiment
from tuneloop.store.experiments import get_experiment


def experiment_metrics(
    engine: Engine, reports: ReportCache, tenant_id: str, ab_test_id: str
) -> dict[str, Any]:
    """The report's JSON, cached until new events are written or the status changes."""
    experiment = get_experiment(engine, tenant_id, ab_test_id)  # NotFound for the tenant
    version = f"{experiment.status}:{experiment.decision}"

    def compute() -> dict[str, Any]:
        return analyze_experiment(engine, tenant_id, ab_test_id).to_json()

    found: dict[str, Any] = reports.get_or_compute(tenant_id, ab_test_id, version, compute)
    return found
