"""The loop's second half: experiment → decide → rollout, steps that wait for the world.

Each is checked, not run through: when the world has not answered yet (the A/B test is
still collecting evidence, the rollout is still advancing) the step returns ``wait`` with
its evidence so far and the run becomes ``waiting``; ``app.runs.advance_runs`` checks it
again. Every external object is found again by a key derived from the run, never made
twice: the experiment is ``ab-<run id>``, the deployment is the one made from it.
"""

from __future__ import annotations

from typing import Any

from tuneloop.domain.experiments import SuccessCriteria
from tuneloop.domain.runs import Bootstrap, RunStatus
from tuneloop.errors import ConflictError, NotFoundError
from tuneloop.experiments.report import ExperimentReport
from tuneloop.experiments.service import (
    ModelRef,
    analyze_experiment,
    create_experiment,
    get_experiment,
    record_decision,
    stop_experiment,
    two_arms,
)
from tuneloop.pipeline.context import RunContext, StepOutcome
from tuneloop.pipeline.outputs import DecideOutput, ExperimentOutput, RegisterOutput, RolloutOutput
from tuneloop.pipeline.promotion import promote_first_champion
from tuneloop.rollout.checks import model_label
from tuneloop.rollout.safety import EvaluationResult
from tuneloop.store.deployment_models import Deployment
from tuneloop.store.deployments import deployment_for_experiment, list_events
from tuneloop.store.models_registry import champion_of

Outputs = dict[str, dict[str, Any]]


def experiment_key(run_id: str) -> str:
    """The run's one A/B test: its key is derived from the run, so a retry finds it."""
    return f"ab-{run_id}"


def _candidate(outputs: Outputs) -> ModelRef:
    registered = RegisterOutput.of(outputs)
    return ModelRef(registered.model_id, str(registered.version))


def experiment_step(ctx: RunContext, outputs: Outputs) -> StepOutcome:
    candidate = _candidate(outputs)
    champion = champion_of(ctx.engine, ctx.tenant_id)
    label = model_label(candidate.model_id, candidate.version)
    if champion is None or (champion.model_id, champion.version) == (
        candidate.model_id,
        candidate.version,
    ):
        return _bootstrap(ctx, candidate, promoted=champion is not None)
    pipeline = ctx.settings.pipeline
    key = experiment_key(ctx.run_id)
    created = False
    try:
        row = get_experiment(ctx.engine, ctx.tenant_id, key)
    except NotFoundError:
        criteria = SuccessCriteria(
            min_engagement_lift=pipeline.min_engagement_lift,
            min_cost_efficiency_gain=pipeline.min_cost_efficiency_gain,
            significance_threshold=pipeline.significance_threshold,
        )
        baseline = ModelRef(champion.model_id, champion.version)
        try:
            row = create_experiment(
                ctx.engine,
                ctx.tenant_id,
                arms=two_arms(baseline, candidate, pipeline.a_b_test_traffic_split),
                duration_hours=pipeline.a_b_test_duration_hours,
                success_criteria=criteria,
                key=key,
                now=ctx.clock.now(),
            )
            created = True
        except ConflictError:  # a concurrent check made it first: use that one
            row = get_experiment(ctx.engine, ctx.tenant_id, key)
    output = ExperimentOutput(
        ab_test_id=row.key,
        baseline=model_label(row.baseline_model_id, row.baseline_version),
        candidate=label,
        traffic_split=row.traffic_split,
        duration_hours=row.duration_hours,
        success_criteria=row.success_criteria,
        created=created,
    )
    return StepOutcome(output.to_json())


def _bootstrap(ctx: RunContext, candidate: ModelRef, *, promoted: bool) -> StepOutcome:
    """No champion yet: promote the candidate (``bootstrap = "promote"``) or wait for a person."""
    label = model_label(candidate.model_id, candidate.version)
    mode = Bootstrap(ctx.settings.pipeline.bootstrap)
    if promoted:  # someone ran `tuneloop models promote` while the run waited
        output = ExperimentOutput(candidate=label, bootstrap=str(mode))
        return StepOutcome(output.to_json(), final=RunStatus.PROMOTED)
    if mode is Bootstrap.MANUAL:
        command = f"tuneloop models promote {candidate.version} --tenant {ctx.tenant_id}"
        output = ExperimentOutput(candidate=label, bootstrap=str(mode), waiting_for=command)
        return StepOutcome(output.to_json(), wait=True)
    promote_first_champion(
        ctx.engine, ctx.settings, ctx.tenant_id, version=candidate.version, tracker=ctx.tracker
    )
    output = ExperimentOutput(candidate=label, bootstrap=str(mode))
    return StepOutcome(output.to_json(), final=RunStatus.PROMOTED)


def decide_step(ctx: RunContext, outputs: Outputs) -> StepOutcome:
    key = str(ExperimentOutput.of(outputs).ab_test_id)
    now = ctx.clock.now()
    row = get_experiment(ctx.engine, ctx.tenant_id, key)
    report = analyze_experiment(ctx.engine, ctx.tenant_id, key, now=now)
    evidence = _evidence(report, checked_at=now.isoformat())
    decided = row.decision if row.status == "decided" else None  # decided before a crash
    verdict = decided or report.recommendation
    at_end = report.elapsed_hours >= report.planned_hours
    significant = report.decisions[report.headline].is_significant
    if decided is None and at_end and verdict != "promote" and not significant:
        # The planned duration is over and the evidence points neither way: no verdict.
        if row.status == "running":
            stop_experiment(ctx.engine, ctx.tenant_id, key, now=now)
        reasons = [*evidence["reasons"], "the planned duration ended without a significant result"]
        ended = evidence | {"recommendation": "inconclusive", "reasons": reasons}
        return StepOutcome(ended, final=RunStatus.INCONCLUSIVE)
    if verdict == "promote":
        if decided is None:
            record_decision(
                ctx.engine,
                ctx.tenant_id,
                key,
                recommendation="promote",
                reasons=report.reasons,
                now=now,
            )
        return StepOutcome(evidence | {"recommendation": "promote"})
    if verdict == "reject":
        if decided is None:
            record_decision(
                ctx.engine,
                ctx.tenant_id,
                key,
                recommendation="reject",
                reasons=report.reasons,
                now=now,
            )
        return StepOutcome(evidence | {"recommendation": "reject"}, final=RunStatus.REJECTED)
    return StepOutcome(evidence, wait=True)


def _evidence(report: ExperimentReport, *, checked_at: str) -> dict[str, Any]:
    decision = report.decisions[report.headline]
    primary = report.analyses["engagement"]
    comparison = next((c for c in primary.comparisons if c.arm == report.headline), None)
    low, high = comparison.ci if comparison is not None and comparison.ci else (None, None)
    output = DecideOutput(
        ab_test_id=report.key,
        recommendation="blocked" if decision.blocked else report.recommendation,
        reasons=list(report.reasons),
        lift=None if comparison is None else comparison.estimate,
        ci_low=low,
        ci_high=high,
        p_value=decision.p_value,
        srm_ok=report.srm.passed,
        srm_p_value=report.srm.p_value,
        sample_sizes={arm.spec.name: arm.exposed_units for arm in report.arms},
        elapsed_hours=round(report.elapsed_hours, 3),
        planned_hours=report.planned_hours,
        checked_at=checked_at,
    )
    return output.to_json()


def rollout_step(ctx: RunContext, outputs: Outputs) -> StepOutcome:
    key = str(ExperimentOutput.of(outputs).ab_test_id)
    row = deployment_for_experiment(ctx.engine, ctx.tenant_id, key)
    if row is None:
        row = ctx.services.deployments.deploy(
            ctx.tenant_id,
            model=_candidate(outputs),
            evaluation=EvaluationResult(key),
            actor=f"run {ctx.run_id}",
            now=ctx.clock.now(),
        )
    output = rollout_output(ctx, row)
    if row.status == "completed":
        return StepOutcome(output | {"outcome": "promoted"}, final=RunStatus.PROMOTED)
    if row.status == "rolled_back":
        return StepOutcome(output | {"outcome": "rolled_back"}, final=RunStatus.ROLLED_BACK)
    return StepOutcome(output, wait=True)


def rollout_output(ctx: RunContext, row: Deployment) -> dict[str, Any]:
    """The deployment as the run keeps it: state, the triggers that fired, the timeline."""
    events = list_events(ctx.engine, ctx.tenant_id, row.id)
    timeline = [
        {"at": e.at.isoformat(), "kind": e.kind, "traffic": e.to_traffic, "reasons": e.reasons}
        for e in events
        if e.kind != "hold"
    ]
    triggers: list[str] = []
    for event in events:
        if event.kind == "rollback":
            triggers += list((event.details or {}).get("triggers", []))
    output = RolloutOutput(
        deployment_id=row.id,
        strategy=row.strategy,
        status=row.status,
        traffic=row.traffic,
        triggers=list(dict.fromkeys(triggers)),
        reasons=list(row.last_reasons or ([row.reason] if row.reason else [])),
        timeline=timeline,
    )
    return output.to_json()


LOOP_STEPS = {
    "experiment": experiment_step,
    "decide": decide_step,
    "rollout": rollout_step,
}
