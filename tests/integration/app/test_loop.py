"""The loop's second half, unattended: A/B test, decision, rollout, promotion and rollback.

The first half (collect → train → register → evaluate) is stood in by small in-test steps
that register a real version in the embedded MLflow (training has its own end-to-end
tests); from ``experiment`` on, the real steps run, moved only by ``advance_runs`` and
``tick_rollouts`` on a manual clock, with simulated clients going through the real routing
and event ingestion. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from registry_helpers import register_version
from tuneloop.app import runs as app_runs
from tuneloop.app.simulation import drive_run, lift_for
from tuneloop.domain.clock import ManualClock
from tuneloop.domain.runs import RunStatus, StepStatus
from tuneloop.experiments.service import list_experiments
from tuneloop.pipeline.context import RunContext, StepOutcome
from tuneloop.pipeline.loop import LOOP_STEPS, experiment_key
from tuneloop.pipeline.outputs import (
    CollectOutput,
    DecideOutput,
    EvaluateOutput,
    ExperimentOutput,
    RegisterOutput,
    RolloutOutput,
    TrainOutput,
)
from tuneloop.pipeline.promotion import promote_first_champion
from tuneloop.pipeline.runner import StepFunction, execute
from tuneloop.pipeline.service import context_for, start_run
from tuneloop.store import runs as repo
from tuneloop.store.deployments import list_deployments
from tuneloop.store.models_registry import champion_of
from tuneloop.synthetic.serving import Behaviour
from tuneloop.wiring import Container

pytest.importorskip("mlflow", reason="the train extra (mlflow) is not installed")

TENANT = "acme"
MODEL = f"tuneloop-{TENANT}"


def first_half(container: Container, folder: Path) -> dict[str, StepFunction]:
    """Stand-ins for collect → evaluate: each run registers one real version."""

    def collect(ctx: RunContext, outputs: dict[str, Any]) -> StepOutcome:
        return StepOutcome(CollectOutput(status="ok", dataset_id=f"ds-{ctx.run_id}").to_json())

    def train(ctx: RunContext, outputs: dict[str, Any]) -> StepOutcome:
        out = TrainOutput(
            job_id=f"{ctx.run_id}-j", backend="test", base_model="tiny", adapter_path=""
        )
        return StepOutcome(out.to_json())

    def register(ctx: RunContext, outputs: dict[str, Any]) -> StepOutcome:
        version = register_version(
            ctx.engine, ctx.tracker, folder / ctx.run_id, ctx.run_id, tenant=TENANT
        )
        return StepOutcome(RegisterOutput(model_id=MODEL, version=version).to_json())

    def evaluate(ctx: RunContext, outputs: dict[str, Any]) -> StepOutcome:
        return StepOutcome(EvaluateOutput(passed=True, reason="test").to_json())

    return {"collect": collect, "train": train, "register": register, "evaluate": evaluate}


def start(container: Container, folder: Path) -> tuple[str, RunStatus]:
    """Start a run and execute it up to its first wait (or its end), as a start does."""
    run = start_run(container.engine, container.settings, TENANT, trigger="data")
    ctx = context_for(container.engine, container.settings, run, services=container)
    steps = first_half(container, folder) | LOOP_STEPS
    return run.id, execute(ctx, steps, poll_seconds=0.05)


def outputs_of(engine: Engine, run_id: str) -> dict[str, dict[str, Any]]:
    return {s.name: s.output or {} for s in repo.steps_of(engine, TENANT, run_id)}


def champion_version(container: Container) -> str | None:
    alias = container.tracker.get_alias(TENANT, "champion")
    row = champion_of(container.engine, TENANT)
    assert (alias is None) == (row is None)
    if alias is None or row is None:
        return None
    assert str(alias.version) == row.version  # MLflow and our table agree
    return row.version


def test_the_loop_promotes_a_winner_and_rolls_back_a_degraded_one(
    container: Container, clock: ManualClock, tmp_path: Path
) -> None:
    # 1. No champion: the first candidate that passes offline evaluation is champion.
    first, status = start(container, tmp_path)
    assert status == RunStatus.PROMOTED
    assert ExperimentOutput.of(outputs_of(container.engine, first)).bootstrap == "promote"
    assert champion_version(container) == "1"
    view = app_runs.status(container, tenant=TENANT, pipeline_id=first)
    assert view.progress["deployment"] == "completed"

    # 2. A challenger: the run creates its A/B test and waits, holding nothing.
    second, status = start(container, tmp_path)
    assert status == RunStatus.WAITING
    run = repo.get_run(container.engine, TENANT, second)
    assert run.lease_owner is None and run.current_step == "decide"
    experiment = ExperimentOutput.of(outputs_of(container.engine, second))
    assert experiment.ab_test_id == experiment_key(second)
    assert (experiment.baseline, experiment.candidate) == (f"{MODEL}@1", f"{MODEL}@2")

    ticks: list[str] = []
    final = drive_run(
        container,
        clock,
        tenant=TENANT,
        run_id=second,
        behaviour=lift_for(f"{MODEL}@2", lift=0.3),
        on_tick=lambda t: ticks.append(t.step or "done"),
    )
    assert final == RunStatus.PROMOTED, ticks
    assert "decide" in ticks and "rollout" in ticks
    assert champion_version(container) == "2"
    evidence = outputs_of(container.engine, second)
    decided = DecideOutput.of(evidence)
    assert decided.recommendation == "promote" and decided.srm_ok
    assert decided.lift is not None and decided.ci_low is not None and decided.ci_low > 0
    rollout = RolloutOutput.of(evidence)
    assert rollout.outcome == "promoted" and rollout.status == "completed"
    advances = [e["traffic"] for e in rollout.timeline if e["kind"] == "advance"]
    assert advances == pytest.approx([0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    (experiment_row,) = [
        e for e in list_experiments(container.engine, TENANT) if e.key == experiment.ab_test_id
    ]
    assert experiment_row.decision == "promote"
    view = app_runs.status(container, tenant=TENANT, pipeline_id=second)
    assert view.run_status == "promoted" and not view.current_step
    assert view.progress == {
        "data_collection": "completed",
        "model_training": "completed",
        "evaluation": "completed",
        "deployment": "completed",
    }
    assert view.message == f"promoted by {rollout.deployment_id}"

    # 3. A candidate that wins its test but degrades once rolled out is rolled back.
    third, status = start(container, tmp_path)
    assert status == RunStatus.WAITING
    degraded = Behaviour(engagement=0.05, error_rate=0.25)
    final = drive_run(
        container,
        clock,
        tenant=TENANT,
        run_id=third,
        behaviour=lift_for(f"{MODEL}@3", lift=0.3, degraded=degraded),
        seed=3,
    )
    assert final == RunStatus.ROLLED_BACK
    rollout = RolloutOutput.of(outputs_of(container.engine, third))
    assert rollout.triggers == ["error_rate_above_5_percent"]
    assert champion_version(container) == "2"
    view = app_runs.status(container, tenant=TENANT, pipeline_id=third)
    assert view.progress["deployment"] == "failed"
    assert view.message is not None and "error_rate_above_5_percent" in view.message
    # One experiment and one deployment per A/B-tested run, never more.
    assert len(list_experiments(container.engine, TENANT)) == 2
    assert len(list_deployments(container.engine, TENANT)) == 2


def test_a_crash_after_creating_the_experiment_or_deployment_finds_it_again(
    container: Container, clock: ManualClock, tmp_path: Path
) -> None:
    start(container, tmp_path)  # champion v1
    run_id, status = start(container, tmp_path)
    assert status == RunStatus.WAITING
    # The process died after creating the experiment, before the step was committed.
    repo.update_step(container.engine, TENANT, run_id, "experiment", status=StepStatus.RUNNING)
    repo.update_step(container.engine, TENANT, run_id, "decide", status=StepStatus.PENDING)
    assert [a.run_id for a in app_runs.advance_runs(container)] == [run_id]
    experiment = ExperimentOutput.of(outputs_of(container.engine, run_id))
    assert experiment.ab_test_id == experiment_key(run_id) and experiment.created is False
    assert len(list_experiments(container.engine, TENANT)) == 1

    # A checker killed mid-check leaves the run running with a lease nobody renews.
    repo.move_run(container.engine, TENANT, run_id, RunStatus.RUNNING)
    stale = datetime.now(UTC) - timedelta(hours=1)
    repo.update_run(container.engine, TENANT, run_id, lease_owner="host:1:dead", heartbeat_at=stale)
    (advanced,) = app_runs.advance_runs(container)
    assert (advanced.run_id, advanced.status) == (run_id, "waiting")
    assert repo.get_run(container.engine, TENANT, run_id).lease_owner is None

    # Drive to the rollout, then "crash" the rollout step after its deploy.
    behaviour = lift_for(f"{MODEL}@2", lift=0.3)
    for _ in range(10):
        drive_run(container, clock, tenant=TENANT, run_id=run_id, behaviour=behaviour, max_ticks=1)
        if repo.get_run(container.engine, TENANT, run_id).current_step == "rollout":
            break
    (deployment,) = list_deployments(container.engine, TENANT)
    repo.update_step(container.engine, TENANT, run_id, "rollout", status=StepStatus.PENDING)
    app_runs.advance_runs(container)
    assert [d.id for d in list_deployments(container.engine, TENANT)] == [deployment.id]
    final = drive_run(container, clock, tenant=TENANT, run_id=run_id, behaviour=behaviour)
    assert final == RunStatus.PROMOTED
    assert len(list_deployments(container.engine, TENANT)) == 1


def test_aborting_a_waiting_run_stops_its_test_or_rolls_its_deployment_back(
    container: Container, clock: ManualClock, tmp_path: Path
) -> None:
    start(container, tmp_path)  # champion v1
    run_id, _ = start(container, tmp_path)
    report = app_runs.abort(container, tenant=TENANT, pipeline_id=run_id)
    key = experiment_key(run_id)
    assert report.status == "aborted" and f"experiment_stopped:{key}" in report.resources_cleaned
    (row,) = list_experiments(container.engine, TENANT)
    assert row.status == "stopped"

    run_id, _ = start(container, tmp_path)
    behaviour = lift_for(f"{MODEL}@3", lift=0.3)
    while repo.get_run(container.engine, TENANT, run_id).current_step != "rollout":
        drive_run(container, clock, tenant=TENANT, run_id=run_id, behaviour=behaviour, max_ticks=1)
    (deployment,) = list_deployments(container.engine, TENANT)
    assert deployment.status == "rolling_out"
    report = app_runs.abort(container, tenant=TENANT, pipeline_id=run_id)
    assert f"deployment_rolled_back:{deployment.id}" in report.resources_cleaned
    (deployment,) = list_deployments(container.engine, TENANT)
    assert deployment.status == "rolled_back" and champion_version(container) == "1"
    assert app_runs.active_run(container, tenant=TENANT) is None


def test_bootstrap_manual_waits_for_a_person(
    container: Container, clock: ManualClock, tmp_path: Path
) -> None:
    pipeline = container.settings.pipeline.model_copy(update={"bootstrap": "manual"})
    container.settings = container.settings.model_copy(update={"pipeline": pipeline})
    run_id, status = start(container, tmp_path)
    assert status == RunStatus.WAITING
    waiting = ExperimentOutput.of(outputs_of(container.engine, run_id)).waiting_for
    assert waiting == f"tuneloop models promote 1 --tenant {TENANT}"
    assert app_runs.advance_runs(container)[0].status == "waiting"  # still nobody
    promote_first_champion(
        container.engine, container.settings, TENANT, version="1", tracker=container.tracker
    )
    assert app_runs.advance_runs(container)[0].status == "promoted"


def test_no_evidence_by_the_end_of_the_test_is_inconclusive(
    container: Container, clock: ManualClock, tmp_path: Path
) -> None:
    start(container, tmp_path)
    run_id, _ = start(container, tmp_path)
    clock.advance(timedelta(hours=167))
    assert app_runs.advance_runs(container)[0].status == "waiting"
    clock.advance(timedelta(hours=2))
    assert app_runs.advance_runs(container)[0].status == "inconclusive"
    (row,) = list_experiments(container.engine, TENANT)
    assert row.status == "stopped"
    decided = DecideOutput.of(outputs_of(container.engine, run_id))
    assert decided.recommendation == "inconclusive"
