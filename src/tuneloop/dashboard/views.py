"""What each dashboard page shows, read through the application layer (``tuneloop.app``).

Every function takes a ``Scope`` (the started app's resources and the caller's tenant) and
returns plain values for a template; actions call the same app functions as the REST API.
Templates and page handlers only lay these values out. Ids are always resolved within the
scope's tenant, so another tenant's id is a NotFoundError (a 404 page).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tuneloop.api.resources import Resources, ServiceHooks
from tuneloop.app import deployments
from tuneloop.app import runs as app_runs
from tuneloop.app.background import RunWorkers
from tuneloop.app.datasets import dataset_page, get_dataset
from tuneloop.app.experiments import list_experiments
from tuneloop.app.models import champion, list_model_versions, promote_first
from tuneloop.dashboard.charts import Interval, interval_chart, line_chart, step_chart
from tuneloop.dashboard.history import looks as earlier_looks
from tuneloop.domain.runs import ACTIVE, RunStatus
from tuneloop.experiments import service as experiments
from tuneloop.experiments.service import ModelRef
from tuneloop.observability.health import health_report
from tuneloop.rollout.safety import EvaluationResult

LOOKS = 12  # points on an experiment's interval-over-time chart
PREVIEW_EXAMPLES = 3


@dataclass(frozen=True)
class Scope:
    """The started app's parts a page needs, and the tenant it acts for."""

    resources: Resources
    workers: RunWorkers
    hooks: ServiceHooks
    tenant_id: str


def overview(scope: Scope) -> dict[str, Any]:
    """The loop at a glance: versions, the active run, experiment and rollout, alerts."""
    engine, tenant = scope.resources.engine, scope.tenant_id
    versions = list_model_versions(engine, tenant, limit=50)
    runs, _ = app_runs.list_runs(engine, tenant, limit=20)
    active = next((r for r in runs if r.status in ACTIVE), None)
    running = list_experiments(engine, tenant, status="running", limit=1)
    deployment = deployments.active_deployment(engine, tenant)
    return {
        "champion": champion(engine, tenant),
        "challenger": next((v for v in versions if v.status == "challenger"), None),
        "active_run": run(scope, active.id) if active is not None else None,
        "experiment": experiment(scope, running[0].key, looks=2) if running else None,
        "deployment": deployments.deployment_view(engine, tenant, deployment.id)
        if deployment is not None
        else None,
        "schedule": scope.resources.settings.pipeline.model_dump(),
        "alerts": _alerts(scope, runs),
    }


def _alerts(scope: Scope, runs: Any) -> list[dict[str, Any]]:
    found = [
        {"kind": "failed run", "what": r.id, "href": f"/ui/runs/{r.id}", "at": r.finished_at}
        for r in runs
        if r.status == RunStatus.FAILED
    ]
    page = deployments.deployment_page(scope.resources.engine, scope.tenant_id, limit=20, offset=0)
    found += [
        {
            "kind": "rollback",
            "what": f"{d.id}: {d.reason or 'rolled back'}",
            "href": f"/ui/deployments/{d.id}",
            "at": d.finished_at,
        }
        for d in page.items
        if d.status in ("rolling_back", "rolled_back")
    ]
    found += [
        {"kind": "breaker open", "what": name, "href": "/ui/health", "at": None}
        for name, state in scope.hooks.breakers.items()
        if state() != "CLOSED"
    ]
    return found


def runs(scope: Scope, *, status: str | None, offset: int, limit: int = 50) -> dict[str, Any]:
    rows, total = app_runs.list_runs(
        scope.resources.engine, scope.tenant_id, limit=limit, offset=offset, status=status
    )
    return {"items": rows, "total": total, "statuses": [s.value for s in RunStatus]}


def run(scope: Scope, run_id: str) -> dict[str, Any]:
    """A run's status, its steps (generically, with their outputs) and its loss chart."""
    engine, tenant = scope.resources.engine, scope.tenant_id
    status = app_runs.status(
        scope.resources.container, tenant=tenant, pipeline_id=run_id, runner=scope.workers
    )
    outputs = {s.name: s.output or {} for s in app_runs.steps_of(engine, tenant, run_id)}
    steps = [
        {"view": step, "details": _scalars(outputs.get(step.name, {}))} for step in status.steps
    ]
    return {
        "status": status,
        "steps": steps,
        "active": not status.finished,
        "loss_chart": line_chart(status.losses, title=f"Training loss of {run_id}"),
        "evaluation": _scalars(outputs.get("evaluate", {})),
        "mlflow_run_id": outputs.get("collect", {}).get("mlflow_run_id"),
        "dataset_id": outputs.get("collect", {}).get("dataset_id"),
        "tracking_uri": scope.resources.settings.mlflow_tracking_uri,
    }


def _scalars(output: dict[str, Any]) -> dict[str, Any]:
    """The plain values of a step's output (lists and nested objects left to their pages)."""
    return {k: v for k, v in output.items() if isinstance(v, str | int | float | bool)}


def start_run(scope: Scope) -> str:
    started = app_runs.start_or_continue(
        scope.resources.container,
        tenant=scope.tenant_id,
        trigger="manual",
        background=True,
        runner=scope.workers,
    )
    return started.view.pipeline_id


def abort_run(scope: Scope, run_id: str, *, reason: str) -> None:
    app_runs.abort(
        scope.resources.container, tenant=scope.tenant_id, pipeline_id=run_id, reason=reason
    )


def experiments_list(scope: Scope, *, offset: int, limit: int = 50) -> list[dict[str, Any]]:
    rows = list_experiments(scope.resources.engine, scope.tenant_id, limit=limit, offset=offset)
    return [experiments.describe_experiment(row) for row in rows]


def experiment(scope: Scope, key: str, *, looks: int = LOOKS) -> dict[str, Any]:
    """The experiment, its report now, and the engagement interval at earlier looks."""
    engine, tenant = scope.resources.engine, scope.tenant_id
    row = experiments.get_experiment(engine, tenant, key)
    report = experiments.analyze_experiment(engine, tenant, key)
    now = _engagement(report)
    history: list[Interval] = []
    if row.started_at is not None:
        start, end = row.started_at, row.ended_at or datetime.now(UTC)

        def look(until: datetime) -> Interval | None:
            then = experiments.analyze_experiment(engine, tenant, key, until=until)
            return _interval(_engagement(then), (until - start) / timedelta(hours=1))

        history = earlier_looks(tenant, key, start=start, end=end, most=looks, look=look)
        latest = _interval(now, (end - start) / timedelta(hours=1))
        history += [latest] if latest is not None else []
    return {
        "experiment": experiments.describe_experiment(row),
        "report": report.to_json(),
        "engagement": now,
        "active": row.status == "running",
        "interval_chart": interval_chart(history, title=f"Engagement lift of {key} over time"),
        "looks": len(history),
    }


def _interval(comparison: dict[str, Any] | None, hours: float) -> Interval | None:
    if comparison is None:
        return None
    low, high = comparison["ci"]
    return Interval(hours, comparison["estimate"], low, high)


def _engagement(report: experiments.ExperimentReport) -> dict[str, Any] | None:
    analysis = report.analyses.get("engagement")
    if analysis is None or not analysis.comparisons:
        return None
    comparison = analysis.comparisons[0]
    if comparison.estimate is None or comparison.ci is None or None in comparison.ci:
        return None
    return comparison.model_dump()


def deploy_candidate(scope: Scope, key: str) -> str:
    """Deploy the experiment's candidate with the settings' rollout (safety checks apply)."""
    engine = scope.resources.engine
    report = experiments.analyze_experiment(engine, scope.tenant_id, key)
    row = experiments.get_experiment(engine, scope.tenant_id, key)
    deployed = deployments.deploy(
        scope.resources.container,
        scope.tenant_id,
        model=ModelRef(row.candidate_model_id, row.candidate_version),
        evaluation=EvaluationResult(key, report.recommendation, True),
        strategy="gradual_rollout",
        rollout={},
    )
    return deployed.id


def deployments_list(scope: Scope, *, offset: int, limit: int = 50) -> dict[str, Any]:
    from tuneloop.rollout.describe import describe_deployment

    page = deployments.deployment_page(
        scope.resources.engine, scope.tenant_id, limit=limit, offset=offset
    )
    return {"items": [describe_deployment(d) for d in page.items], "total": page.total}


def deployment(scope: Scope, deployment_id: str) -> dict[str, Any]:
    """A deployment, its audit trail, and its traffic share over time as steps."""
    view = deployments.deployment_view(scope.resources.engine, scope.tenant_id, deployment_id)
    events = view["events"]
    steps: list[tuple[float, float]] = []
    if events:
        start = datetime.fromisoformat(events[0]["at"])
        for event in events:
            at = (datetime.fromisoformat(event["at"]) - start) / timedelta(hours=1)
            steps.append((at, float(event["to_traffic"] or 0.0)))
        # the last share holds until now (or until the deployment finished)
        end = (
            datetime.fromisoformat(view["finished_at"])
            if view["finished_at"]
            else datetime.now(UTC)
        )
        steps.append((max((end - start) / timedelta(hours=1), steps[-1][0]), steps[-1][1]))
    return {
        "deployment": view,
        "active": view["status"] in ("rolling_out", "rolling_back"),
        "traffic_chart": step_chart(steps, title=f"Traffic share of {deployment_id}"),
    }


def rollback(scope: Scope, deployment_id: str, *, reason: str) -> None:
    deployments.rollback(scope.resources.container, scope.tenant_id, deployment_id, reason=reason)


def datasets_list(scope: Scope, *, offset: int, limit: int = 50) -> dict[str, Any]:
    page = dataset_page(scope.resources.engine, scope.tenant_id, limit=limit, offset=offset)
    return {"items": page.items, "total": page.total}


def dataset(scope: Scope, dataset_id: str) -> dict[str, Any]:
    row = get_dataset(scope.resources.engine, scope.tenant_id, dataset_id)
    manifest = row.manifest or {}
    return {
        "dataset": row,
        "manifest": manifest,
        "dropped": manifest.get("dropped", {}),
        "tokens": manifest.get("tokens", {}),
        "preview": _preview(Path(row.path) / "train.jsonl"),
        "sources": manifest.get("source_models") or manifest.get("source_model_shares") or {},
    }


def _preview(path: Path) -> list[list[dict[str, Any]]]:
    """The first few examples' messages; none when the file is gone."""
    found: list[list[dict[str, Any]]] = []
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                found.append(json.loads(line).get("messages", []))
                if len(found) >= PREVIEW_EXAMPLES:
                    break
    except (OSError, ValueError):
        return found
    return found


def models(scope: Scope) -> dict[str, Any]:
    engine, tenant = scope.resources.engine, scope.tenant_id
    versions = list_model_versions(engine, tenant, limit=200)
    return {"items": versions, "has_champion": champion(engine, tenant) is not None}


def promote(scope: Scope, version: str) -> None:
    promote_first(scope.resources.container, scope.tenant_id, version=version)


def health(scope: Scope) -> dict[str, Any]:
    resources = scope.resources
    report = health_report(
        engine=resources.engine,
        redis=resources.redis,
        mlflow_uri=resources.settings.mlflow.tracking_uri,
        breakers=scope.hooks.breakers,
    )
    return {"report": report, "worker": None}
