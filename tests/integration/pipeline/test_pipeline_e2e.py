"""The real pipeline end to end: collect → train (tiny model) → MLflow → evaluate.

Checked through MLflow's own client; a SIGKILL during training followed by a rerun gives
one training job and one registered version; an abort during training stops and cleans.
The tiny base is built once per session and copied into each test's workspace.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tuneloop.config import Settings
from tuneloop.domain.runs import RunStatus
from tuneloop.pipeline.runner import execute
from tuneloop.pipeline.service import abort_run, context_for, start_run
from tuneloop.pipeline.steps import STEP_FUNCTIONS
from tuneloop.posts.schema import PostIn
from tuneloop.store import runs as repo
from tuneloop.store.pipeline_models import ModelVersion, TrainingJob
from tuneloop.store.posts import upsert_posts
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts
from tuneloop.wiring import build_container

pytest.importorskip("torch", reason="the train extra (torch) is not installed")
pytest.importorskip("mlflow", reason="the train extra (mlflow) is not installed")
pytestmark = [pytest.mark.train, pytest.mark.slow]

TENANT = "acme"
SPEC = SyntheticSpec(posts=1600, seed=5)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tuneloop.train.tiny import ensure_tiny_base

    folder = tmp_path_factory.mktemp("tiny") / "base"
    posts = [(p["hook"], p["body"]) for p in generate_posts(SPEC)]
    return ensure_tiny_base(folder, lambda: posts)


@pytest.fixture
def prepared(
    settings: Settings, engine: Engine, tiny_base: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    rows = generate_posts(SPEC, now=datetime.now(UTC))
    upsert_posts(engine, TENANT, (PostIn.model_construct(**row) for row in rows))
    shutil.copytree(tiny_base, settings.workspace / "models" / f"tiny-{TENANT}")
    monkeypatch.setenv("TUNELOOP_TRAINING__EPOCHS", "3")
    configured = settings.model_copy(
        update={"training": settings.training.model_copy(update={"epochs": 3})}
    )
    return configured


def run_in_process(engine: Engine, settings: Settings) -> RunStatus:
    run = start_run(engine, settings, TENANT)
    return execute(
        context_for(engine, settings, run, services=build_container(settings, engine=engine)),
        STEP_FUNCTIONS,
    )


def test_a_run_is_tracked_registered_and_evaluated(engine: Engine, prepared: Settings) -> None:
    from mlflow import MlflowClient

    # No champion yet: the candidate that passed offline evaluation is the first one.
    assert run_in_process(engine, prepared) == RunStatus.PROMOTED
    (run,), _ = repo.list_runs(engine, TENANT)
    steps = {s.name: s.output or {} for s in repo.steps_of(engine, TENANT, run.id)}
    assert steps["train"]["train_loss"] > 0
    assert steps["evaluate"]["passed"] is True
    assert steps["evaluate"]["candidate_loss"] < steps["evaluate"]["reference_loss"]

    client = MlflowClient(tracking_uri=prepared.mlflow_tracking_uri)
    mlflow_run = client.get_run(run.mlflow_run_id)
    assert mlflow_run.data.params["dataset_hash"] == run.dataset_id
    assert mlflow_run.data.params["base_model"] == "tiny"
    assert mlflow_run.info.status == "FINISHED"
    history = client.get_metric_history(run.mlflow_run_id, "train_loss")
    assert len(history) >= len(steps["train"]["losses"])  # per-step points plus the summary
    assert "offline_candidate_loss" in mlflow_run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.mlflow_run_id)}
    assert {"adapter", "dataset"} <= artifacts
    version = client.get_model_version_by_alias(f"tuneloop-{TENANT}", "champion")
    assert str(version.version) == "1"
    assert version.run_id == run.mlflow_run_id
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(TrainingJob)) == 1
        row = session.get(ModelVersion, (TENANT, f"tuneloop-{TENANT}", "1"))
        assert row is not None and row.status == "champion"


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_for(predicate: object, *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {seconds:.0f}s waiting for {what}")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sigkill_during_training_then_rerun_trains_once_and_registers_once(
    engine: Engine, prepared: Settings
) -> None:
    from mlflow import MlflowClient

    from tuneloop.train.workdir import complete_checkpoints

    command = [sys.executable, "-m", "tuneloop.cli.main", "run", "--tenant", TENANT]
    child = subprocess.Popen(
        command, env=_child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    runs_dir = prepared.workspace / "runs" / TENANT
    # A checkpoint directory appears before its files are written; killing then would leave
    # a partial one, which the trainer rightly discards. Wait for a complete checkpoint.
    _wait_for(
        lambda: any(complete_checkpoints(train) for train in runs_dir.glob("*/train")),
        seconds=300,
        what="the first epoch's complete checkpoint",
    )
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    (run,), _ = repo.list_runs(engine, TENANT)
    assert run.status == "running"  # killed: nobody finished it

    rerun = subprocess.run(command, env=_child_env(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"continuing run {run.id}" in rerun.stdout

    (final,), total = repo.list_runs(engine, TENANT)
    assert total == 1 and final.status == "promoted"
    train = next(s for s in repo.steps_of(engine, TENANT, run.id) if s.name == "train")
    assert train.attempts == 2
    assert train.output is not None and train.output["resumed_from"] is not None
    with Session(engine) as session:
        jobs = session.scalars(select(TrainingJob)).all()
    assert len(jobs) == 1 and jobs[0].attempts == 2 and jobs[0].status == "succeeded"
    client = MlflowClient(tracking_uri=prepared.mlflow_tracking_uri)
    versions = client.search_model_versions(f"name='tuneloop-{TENANT}'")
    assert len(versions) == 1
    experiment = client.get_experiment_by_name(f"tuneloop-{TENANT}")
    (mlflow_run,) = client.search_runs([experiment.experiment_id])
    assert len(client.search_runs([experiment.experiment_id])) == 1
    # The resumed training replayed steps after its checkpoint: each is in MLflow once.
    steps = [m.step for m in client.get_metric_history(mlflow_run.info.run_id, "train_loss")]
    steps = [step for step in steps if step > 0]  # the step's summary is logged at step 0
    assert len(steps) == len(set(steps)), "duplicate loss points after the resume"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sigterm_during_training_interrupts_and_keeps_the_run_resumable(
    engine: Engine, prepared: Settings
) -> None:
    command = [sys.executable, "-m", "tuneloop.cli.main", "run", "--tenant", TENANT]
    child = subprocess.Popen(
        command, env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    runs_dir = prepared.workspace / "runs" / TENANT
    _wait_for(lambda: any(runs_dir.glob("*/train/*")), seconds=300, what="training to start")
    child.send_signal(signal.SIGTERM)
    output, _ = child.communicate(timeout=120)

    assert child.returncode == 128 + signal.SIGTERM, output
    assert "interrupted (SIGTERM)" in output and "`tuneloop run` continues it" in output
    (run,), _ = repo.list_runs(engine, TENANT)
    assert run.status == "running" and run.lease_owner is None  # left for the next executor
    assert runs_dir.joinpath(run.id).exists()  # nothing cleaned: checkpoints kept
    train = next(s for s in repo.steps_of(engine, TENANT, run.id) if s.name == "train")
    assert train.status == "pending" and train.error == "interrupted: SIGTERM"
    with Session(engine) as session:
        job = session.get(TrainingJob, (TENANT, run.id))
    assert job is not None and job.status != "cancelled"


def test_abort_during_training_stops_and_cleans_up(engine: Engine, prepared: Settings) -> None:
    command = [sys.executable, "-m", "tuneloop.cli.main", "run", "--tenant", TENANT]
    child = subprocess.Popen(
        command, env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    runs_dir = prepared.workspace / "runs" / TENANT
    _wait_for(lambda: any(runs_dir.glob("*/train/*")), seconds=300, what="training to start")
    (run,), _ = repo.list_runs(engine, TENANT)
    report = abort_run(
        engine,
        prepared,
        TENANT,
        run.id,
        services=build_container(prepared, engine=engine),
        wait_seconds=120,
    )
    output, _ = child.communicate(timeout=120)
    assert report.status == "aborted", output
    assert "temporary_files" in report.resources_cleaned
    assert "training_job_cancelled" in report.resources_cleaned
    assert not (runs_dir / run.id).exists()
    final = repo.get_run(engine, TENANT, run.id)
    assert final.status == "aborted" and final.cleanup is not None
    with Session(engine) as session:
        job = session.get(TrainingJob, (TENANT, run.id))
    assert job is not None and job.status == "cancelled"


def test_two_tenants_train_on_the_same_day(engine: Engine, prepared: Settings) -> None:
    """demo, then acme: the same run id in both (ids count per tenant), two trained jobs."""
    from mlflow import MlflowClient

    other = "demo"
    rows = generate_posts(SPEC, now=datetime.now(UTC))
    upsert_posts(engine, other, (PostIn.model_construct(**row) for row in rows))
    shutil.copytree(
        prepared.workspace / "models" / f"tiny-{TENANT}",
        prepared.workspace / "models" / f"tiny-{other}",
    )
    for tenant in (other, TENANT):
        run = start_run(engine, prepared, tenant)
        services = build_container(prepared, engine=engine)
        status = execute(context_for(engine, prepared, run, services=services), STEP_FUNCTIONS)
        # each tenant's first candidate becomes its champion (pipeline.bootstrap)
        assert status == RunStatus.PROMOTED, repo.get_run(engine, tenant, run.id).error
    (first,), _ = repo.list_runs(engine, other)
    (second,), _ = repo.list_runs(engine, TENANT)
    assert first.id == second.id
    with Session(engine) as session:
        jobs = session.scalars(select(TrainingJob).order_by(TrainingJob.tenant_id)).all()
    assert [(j.tenant_id, j.id, j.status) for j in jobs] == [
        (TENANT, f"{second.id}-train", "succeeded"),
        (other, f"{first.id}-train", "succeeded"),
    ]
    assert jobs[0].output_dir != jobs[1].output_dir
    client = MlflowClient(tracking_uri=prepared.mlflow_tracking_uri)
    names = {client.get_run(r.mlflow_run_id).info.run_name for r in (first, second)}  # type: ignore[arg-type]
    assert names == {f"{other}-{first.id}", f"{TENANT}-{second.id}"}
