"""Experiment service: create, list, start, stop, decide, simulate and analyze A/B tests.

Every function takes the tenant and scopes every query by it. Analysis pulls per-arm
sufficient statistics computed in SQL (``store.experiment_statistics.arm_statistics``), runs the
statistics engine on each metric and asks the decision policy for a recommendation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from tuneloop.config import UpstreamSettings
from tuneloop.domain.experiments import (
    ArmSpec,
    ExperimentStatus,
    Recommendation,
    SuccessCriteria,
    check_transition,
)
from tuneloop.errors import ConflictError, InvalidInputError
from tuneloop.experiments.assignment import segments
from tuneloop.experiments.ownership import check_no_rollout, check_not_a_duplicate
from tuneloop.experiments.report import ExperimentReport, Method, build_report
from tuneloop.experiments.tenancy import check_tenant_models
from tuneloop.store.experiment_models import Experiment
from tuneloop.store.experiments import (
    add_experiment,
    get_experiment,
    list_experiments,
    next_experiment_key,
    update_experiment,
)
from tuneloop.store.types import utcnow

__all__ = [
    "ExperimentReport",
    "ModelRef",
    "analyze_experiment",
    "create_experiment",
    "describe_experiment",
    "get_experiment",
    "list_experiments",
    "record_decision",
    "start_experiment",
    "stop_experiment",
    "two_arms",
]


@dataclass(frozen=True)
class ModelRef:
    model_id: str
    version: str = "1"

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """``MODEL[@VERSION]``; model ids may contain ':' (``ft:gpt-4o-mini:org::id``)."""
        model_id, _, version = text.strip().rpartition("@") if "@" in text else (text, "", "1")
        if not model_id.strip() or not version.strip():
            raise InvalidInputError(f"expected MODEL or MODEL@VERSION, got {text!r}")
        return cls(model_id.strip(), version.strip())


def two_arms(baseline: ModelRef, candidate: ModelRef, traffic_split: float) -> list[ArmSpec]:
    """The usual test: ``traffic_split`` is the candidate's share (0.1 = 10 %)."""
    return [
        ArmSpec("baseline", baseline.model_id, baseline.version, round(1.0 - traffic_split, 12)),
        ArmSpec("candidate", candidate.model_id, candidate.version, traffic_split),
    ]


def create_experiment(
    engine: Engine,
    tenant_id: str,
    *,
    arms: Sequence[ArmSpec],
    duration_hours: int = 168,
    success_criteria: SuccessCriteria | None = None,
    key: str | None = None,
    start: bool = True,
    now: datetime | None = None,
    upstreams: Mapping[str, UpstreamSettings] | None = None,
) -> Experiment:
    """Create an experiment (running unless ``start=False``); its key is generated if not given.
    Every arm must be the tenant's to use (``ownership``; ``upstreams``: the serving entries)."""
    _check_arms(arms, duration_hours)
    check_tenant_models(
        engine, tenant_id, [(arm.model_id, arm.version) for arm in arms], upstreams=upstreams
    )
    check_not_a_duplicate(engine, tenant_id, arms, key=key)
    if start:
        check_no_rollout(engine, tenant_id)
    now = now or utcnow()
    for _attempt in range(5):  # a generated key can race with a concurrent create
        row = _new_row(tenant_id, arms, duration_hours, success_criteria, now, start)
        row.key = key or next_experiment_key(engine, tenant_id, now.date())
        try:
            return add_experiment(engine, row)
        except ConflictError:
            if key is not None:
                raise
    raise ConflictError("could not find a free experiment key; try again")


def _check_arms(arms: Sequence[ArmSpec], duration_hours: int) -> None:
    if len(arms) < 2:
        raise InvalidInputError("an experiment needs a baseline and at least one candidate")
    if any(arm.weight <= 0 for arm in arms):
        raise InvalidInputError("every arm needs a positive share of traffic")
    if duration_hours < 1:
        raise InvalidInputError("duration_hours must be at least 1")
    segments([(arm.name, arm.weight) for arm in arms])  # the assignment's own checks


def _new_row(
    tenant_id: str,
    arms: Sequence[ArmSpec],
    duration_hours: int,
    criteria: SuccessCriteria | None,
    now: datetime,
    start: bool,
) -> Experiment:
    baseline, candidate = arms[0], arms[1]
    return Experiment(
        tenant_id=tenant_id,
        baseline_model_id=baseline.model_id,
        baseline_version=baseline.version,
        candidate_model_id=candidate.model_id,
        candidate_version=candidate.version,
        traffic_split=round(sum(arm.weight for arm in arms[1:]), 12),
        arms=[arm.to_json() for arm in arms],
        duration_hours=duration_hours,
        success_criteria=(criteria or SuccessCriteria()).to_json(),
        status=ExperimentStatus.RUNNING if start else ExperimentStatus.DRAFT,
        created_at=now,
        started_at=now if start else None,
    )


def arm_specs(experiment: Experiment) -> list[ArmSpec]:
    return [ArmSpec.from_json(arm) for arm in experiment.arms]


def start_experiment(
    engine: Engine, tenant_id: str, key: str, *, now: datetime | None = None
) -> Experiment:
    check_no_rollout(engine, tenant_id)

    def change(row: Experiment) -> None:
        check_transition(key, ExperimentStatus(row.status), ExperimentStatus.RUNNING)
        row.status = ExperimentStatus.RUNNING
        row.started_at = now or utcnow()

    return update_experiment(engine, tenant_id, key, change)


def stop_experiment(
    engine: Engine, tenant_id: str, key: str, *, now: datetime | None = None
) -> Experiment:
    """Stop taking traffic; events still arriving are kept (late outcomes are real)."""

    def change(row: Experiment) -> None:
        check_transition(key, ExperimentStatus(row.status), ExperimentStatus.STOPPED)
        row.status = ExperimentStatus.STOPPED
        row.ended_at = now or utcnow()

    return update_experiment(engine, tenant_id, key, change)


def record_decision(
    engine: Engine,
    tenant_id: str,
    key: str,
    *,
    recommendation: str,
    reasons: Sequence[str],
    now: datetime | None = None,
) -> Experiment:
    """Close the experiment with a promote or reject decision and its reasons."""
    if recommendation not in (Recommendation.PROMOTE, Recommendation.REJECT):
        raise InvalidInputError(
            f"a decision is promote or reject, got {recommendation!r} (continue keeps it running)"
        )
    moment = now or utcnow()

    def change(row: Experiment) -> None:
        check_transition(key, ExperimentStatus(row.status), ExperimentStatus.DECIDED)
        row.status = ExperimentStatus.DECIDED
        row.decision = str(recommendation)
        row.decision_reasons = list(reasons)
        row.decided_at = moment
        row.ended_at = row.ended_at or moment

    return update_experiment(engine, tenant_id, key, change)


def elapsed_hours(experiment: Experiment, now: datetime | None = None) -> float:
    if experiment.started_at is None:
        return 0.0
    end = experiment.ended_at or now or utcnow()
    return max((end - experiment.started_at).total_seconds() / 3600.0, 0.0)


def describe_experiment(experiment: Experiment) -> dict[str, Any]:
    """The documented ``create-ab-test`` response fields, plus arms and the decision."""
    started = experiment.started_at
    allocation = {arm["name"]: arm["weight"] for arm in experiment.arms}
    return {
        "ab_test_id": experiment.key,
        "status": experiment.status,
        "baseline_model": {
            "model_id": experiment.baseline_model_id,
            "version": experiment.baseline_version,
        },
        "candidate_model": {
            "model_id": experiment.candidate_model_id,
            "version": experiment.candidate_version,
        },
        "traffic_split": experiment.traffic_split,
        "traffic_allocation": allocation,
        "arms": experiment.arms,
        "duration_hours": experiment.duration_hours,
        "success_criteria": experiment.success_criteria,
        "created_at": experiment.created_at.isoformat(),
        "start_time": started.isoformat() if started else None,
        "estimated_end_time": (
            (started + timedelta(hours=experiment.duration_hours)).isoformat() if started else None
        ),
        "end_time": experiment.ended_at.isoformat() if experiment.ended_at else None,
        "decision": experiment.decision,
        "decision_reasons": experiment.decision_reasons,
        "monitoring_endpoints": {
            "metrics": f"/evaluation/metrics/{experiment.key}",
            "status": f"/evaluation/status/{experiment.key}",
        },
    }


def analyze_experiment(
    engine: Engine,
    tenant_id: str,
    key: str,
    *,
    method: Method = "sequential",
    now: datetime | None = None,
    until: datetime | None = None,
) -> ExperimentReport:
    """Per-arm metrics, every comparison with the baseline, SRM and a recommendation;
    with ``until``, as they stood then (only the events up to it, hours elapsed by then)."""
    experiment = get_experiment(engine, tenant_id, key)
    return build_report(
        engine,
        experiment,
        elapsed_hours=elapsed_hours(experiment, until or now),
        method=method,
        until=until,
    )
