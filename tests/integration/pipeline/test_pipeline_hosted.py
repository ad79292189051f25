"""A whole run with ``training.backend = "openai"`` against the fake fine-tuning API.

collect → a hosted job (uploads, polling, per-step metrics in MLflow) → a registered
version that records the ``ft:`` model → the offline gate on the job's validation loss →
served by the ``openai`` section under its ``ft:`` name. Real SQLite/PostgreSQL, real
MLflow, real HTTP; the fake runs on the wall clock with sub-second phases.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openai import OpenAI
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tuneloop.config import Settings
from tuneloop.domain.clock import SystemClock
from tuneloop.domain.runs import RunStatus
from tuneloop.pipeline.runner import execute
from tuneloop.pipeline.service import abort_run, context_for, start_run
from tuneloop.pipeline.steps import STEP_FUNCTIONS
from tuneloop.posts.schema import PostIn
from tuneloop.resilience.registry import reset_process_breakers
from tuneloop.serving.targets import UpstreamTarget, target_for
from tuneloop.store import runs as repo
from tuneloop.store.pipeline_models import ModelVersion, TrainingJob
from tuneloop.store.posts import upsert_posts
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts
from tuneloop.train.hosted.fake import API_KEY, FakeFineTuning, serve
from tuneloop.wiring import build_container

pytest.importorskip("mlflow", reason="the train extra (mlflow) is not installed")

TENANT = "acme"
SPEC = SyntheticSpec(posts=400, seed=5)


@pytest.fixture
def fake() -> FakeFineTuning:
    return FakeFineTuning(
        SystemClock(), process_s=0.1, validate_s=0.1, queue_s=0.1, step_s=0.05, steps_per_epoch=2
    )


@pytest.fixture
def hosted(settings: Settings, engine: Engine, fake: FakeFineTuning) -> Iterator[Settings]:
    reset_process_breakers()
    rows = generate_posts(SPEC, now=datetime.now(UTC))
    upsert_posts(engine, TENANT, (PostIn.model_construct(**row) for row in rows))
    with serve(fake) as base_url:
        training = settings.training.model_copy(
            update={
                "backend": "openai",
                "epochs": 3,
                "openai": settings.training.openai.model_copy(
                    update={"poll_initial_seconds": 0.05, "poll_max_seconds": 0.2}
                ),
            }
        )
        yield settings.model_copy(
            update={
                "training": training,
                "openai": settings.openai.model_copy(
                    update={"base_url": base_url, "api_key": SecretStr(API_KEY)}
                ),
                "pipeline": settings.pipeline.model_copy(update={"training_data_threshold": 10}),
            }
        )
    reset_process_breakers()


def test_a_hosted_run_registers_an_ft_version_that_is_served(
    engine: Engine, hosted: Settings, fake: FakeFineTuning
) -> None:
    from mlflow import MlflowClient

    run = start_run(engine, hosted, TENANT)
    assert (
        execute(
            context_for(engine, hosted, run, services=build_container(hosted, engine=engine)),
            STEP_FUNCTIONS,
        )
        == RunStatus.PROMOTED  # the tenant's first candidate: champion (bootstrap)
    )
    steps = {s.name: s.output or {} for s in repo.steps_of(engine, TENANT, run.id)}
    (job_id,) = fake.jobs
    fine_tuned = fake.view(job_id)["fine_tuned_model"]
    assert steps["train"]["backend"] == "openai"
    assert steps["train"]["hosted_model"] == fine_tuned
    assert steps["train"]["estimated_cost_usd"] > 0
    assert steps["evaluate"]["passed"] is True
    assert "its own first" in steps["evaluate"]["gate_basis"]  # no hosted champion yet

    with Session(engine) as session:
        job = session.get(TrainingJob, (TENANT, run.id))
        version = session.scalars(select(ModelVersion)).one()
    assert job is not None and job.external_id == job_id and job.backend == "openai"
    assert version.served_model == fine_tuned and version.adapter_path is None
    assert fake.jobs[job_id].body["metadata"] == {"tuneloop_tenant": TENANT, "tuneloop_run": run.id}

    client = MlflowClient(tracking_uri=hosted.mlflow_tracking_uri)
    mlflow_run_id = steps["collect"]["mlflow_run_id"]
    valid = client.get_metric_history(mlflow_run_id, "valid_loss")
    assert len(valid) == 3 and [m.step for m in valid] == [2, 4, 6]  # one per epoch
    assert len(client.get_metric_history(mlflow_run_id, "train_loss")) >= 6
    registered = client.get_model_version(version.model_id, version.version)
    assert registered.tags["tuneloop.fine_tuned_model"] == fine_tuned
    assert registered.tags["tuneloop.external_job_id"] == job_id

    target = target_for(hosted, TENANT, version.model_id, version.version, version)
    assert isinstance(target, UpstreamTarget) and target.model == fine_tuned
    answer = OpenAI(base_url=target.base_url, api_key=target.api_key).chat.completions.create(
        model=target.model, messages=[{"role": "user", "content": "hello"}]
    )
    assert answer.choices[0].message.content == f"{fine_tuned} says: hello"


def test_abort_during_a_hosted_job_cancels_it(
    engine: Engine, hosted: Settings, fake: FakeFineTuning, tmp_path: Path
) -> None:
    fake.step_s = 60.0  # a job that would run for many minutes
    run = start_run(engine, hosted, TENANT)
    worker = threading.Thread(
        target=execute,
        args=(
            context_for(engine, hosted, run, services=build_container(hosted, engine=engine)),
            STEP_FUNCTIONS,
        ),
        daemon=True,
    )
    worker.start()
    deadline = time.monotonic() + 60
    while not any(fake.view(j)["status"] == "running" for j in list(fake.jobs)):
        assert time.monotonic() < deadline, "the hosted job never started running"
        time.sleep(0.05)
    report = abort_run(
        engine,
        hosted,
        TENANT,
        run.id,
        wait_seconds=60,
        services=build_container(hosted, engine=engine),
    )
    worker.join(30)
    assert report.status == "aborted"
    assert "openai_job_cancelled" in report.resources_cleaned
    (remote,) = fake.jobs.values()
    assert remote.ended == "cancelled"


def test_a_warm_started_run_fine_tunes_the_champions_ft_model(
    engine: Engine, hosted: Settings, fake: FakeFineTuning
) -> None:
    from mlflow import MlflowClient

    from tuneloop.store.models_registry import set_champion

    first = start_run(engine, hosted, TENANT)
    assert (
        execute(
            context_for(engine, hosted, first, services=build_container(hosted, engine=engine)),
            STEP_FUNCTIONS,
        )
        == RunStatus.PROMOTED  # the tenant's first candidate: champion (bootstrap)
    )
    with Session(engine) as session:
        champion = session.scalars(select(ModelVersion)).one()
    set_champion(engine, TENANT, champion.model_id, champion.version)
    warm = hosted.model_copy(
        update={"training": hosted.training.model_copy(update={"init": "champion"})}
    )
    second = start_run(engine, warm, TENANT, force_run=True)
    assert (
        execute(
            context_for(engine, warm, second, services=build_container(warm, engine=engine)),
            STEP_FUNCTIONS,
        )
        # past the offline gate a second run goes on to its A/B test and waits there
        in (RunStatus.WAITING, RunStatus.GATED)
    )
    jobs = sorted(fake.jobs.values(), key=lambda j: j.created)
    assert len(jobs) == 2
    assert jobs[1].body["model"] == champion.served_model  # the ft: model, trained further
    trained = {s.name: s.output or {} for s in repo.steps_of(engine, TENANT, second.id)}["train"]
    assert trained["warm_start"]["from"] == f"{champion.model_id}@{champion.version}"
    assert trained["warm_start"]["depth"] == 1
    collected = {s.name: s.output or {} for s in repo.steps_of(engine, TENANT, second.id)}
    params = (
        MlflowClient(tracking_uri=warm.mlflow_tracking_uri)
        .get_run(collected["collect"]["mlflow_run_id"])
        .data.params
    )
    assert params["training.init_from"] == f"{champion.model_id}@{champion.version}"
