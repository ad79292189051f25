"""Runs through the Tracker, checked with MLflow's own client on the same SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tuneloop.errors import ConflictError, InvalidInputError
from tuneloop.tracking import Tracker

PIPELINE_RUN = "ft-pipeline-20250102-001"


def test_start_run_logs_params_and_tags_in_the_tenant_experiment(
    tracker: Tracker, mlflow_client: MlflowClient, tmp_path: Path
) -> None:
    run_id = tracker.start_run(
        "acme", PIPELINE_RUN, params={"learning_rate": 2e-4, "epochs": 3}, tags={"base": "tiny"}
    )

    run = mlflow_client.get_run(run_id)
    experiment = mlflow_client.get_experiment(run.info.experiment_id)
    assert experiment.name == "tuneloop-acme"
    assert experiment.artifact_location == (tmp_path / "artifacts" / "tuneloop-acme").as_uri()
    assert run.info.run_name == f"acme-{PIPELINE_RUN}"  # unique across tenants too
    assert run.info.status == "RUNNING"
    assert run.data.params == {"learning_rate": "0.0002", "epochs": "3"}
    assert run.data.tags["tuneloop.pipeline_run_id"] == PIPELINE_RUN
    assert run.data.tags["tuneloop.tenant"] == "acme"
    assert run.data.tags["base"] == "tiny"


def test_metrics_are_logged_per_step(tracker: Tracker, mlflow_client: MlflowClient) -> None:
    run_id = tracker.start_run("acme", PIPELINE_RUN)

    assert tracker.log_metrics(run_id, {"loss": 2.5, "grad_norm": 1.0}, step=0) == "logged"
    assert tracker.log_metrics(run_id, {"loss": 1.25}, step=10) == "logged"

    history = mlflow_client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 2.5), (10, 1.25)]
    assert mlflow_client.get_run(run_id).data.metrics == {"loss": 1.25, "grad_norm": 1.0}


def test_artifacts_manifest_text_and_end(
    tracker: Tracker, mlflow_client: MlflowClient, tmp_path: Path
) -> None:
    run_id = tracker.start_run("acme", PIPELINE_RUN)
    checkpoints = tmp_path / "ckpt"
    (checkpoints / "step-10").mkdir(parents=True)
    (checkpoints / "step-10" / "state.bin").write_bytes(b"\x00\x01")
    manifest = {"content_hash": "ab12", "counts": {"train": 90, "validation": 10}}

    tracker.log_artifacts(run_id, checkpoints, "checkpoints")
    tracker.log_dict(run_id, manifest, "dataset/manifest.json")
    tracker.log_text(run_id, "trained on 100 posts", "notes.txt")
    tracker.end_run(run_id, "FINISHED")

    listed = {a.path for a in mlflow_client.list_artifacts(run_id)}
    assert listed == {"checkpoints", "dataset", "notes.txt"}
    nested = [a.path for a in mlflow_client.list_artifacts(run_id, "checkpoints/step-10")]
    assert nested == ["checkpoints/step-10/state.bin"]
    local = mlflow_client.download_artifacts(run_id, "dataset/manifest.json", str(tmp_path))
    assert json.loads(Path(local).read_text()) == manifest
    run = mlflow_client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.end_time is not None


def test_start_run_again_finds_the_same_run_and_resumes_it(
    tracker: Tracker, mlflow_client: MlflowClient, store_uri: str, tmp_path: Path
) -> None:
    first = tracker.start_run("acme", PIPELINE_RUN, params={"epochs": 3})
    tracker.end_run(first, "FAILED")  # the step crashed; the pipeline retries it
    again = Tracker(store_uri, artifact_root=tmp_path / "artifacts")  # e.g. a new process

    second = again.start_run("acme", PIPELINE_RUN, params={"epochs": 3, "seed": 7})

    assert second == first
    experiment = mlflow_client.get_experiment_by_name("tuneloop-acme")
    assert experiment is not None
    assert len(mlflow_client.search_runs([experiment.experiment_id])) == 1
    run = mlflow_client.get_run(first)
    assert run.info.status == "RUNNING"
    assert run.data.params == {"epochs": "3", "seed": "7"}


def test_a_retry_may_not_change_a_logged_param(tracker: Tracker) -> None:
    tracker.start_run("acme", PIPELINE_RUN, params={"epochs": 3})
    with pytest.raises(ConflictError, match="epochs='3', not '4'"):
        tracker.start_run("acme", PIPELINE_RUN, params={"epochs": 4})


def test_tenants_have_their_own_experiments_and_runs(
    tracker: Tracker, mlflow_client: MlflowClient
) -> None:
    acme = tracker.start_run("acme", PIPELINE_RUN)
    globex = tracker.start_run("globex", PIPELINE_RUN)

    assert acme != globex
    names = {e.name for e in mlflow_client.search_experiments()}
    assert {"tuneloop-acme", "tuneloop-globex"} <= names


@pytest.mark.parametrize(("tenant", "pipeline_run_id"), [("a/b", "p1"), ("acme", "p1' or 1=1")])
def test_unsafe_names_are_refused_before_reaching_mlflow(
    tracker: Tracker, mlflow_client: MlflowClient, tenant: str, pipeline_run_id: str
) -> None:
    with pytest.raises(InvalidInputError, match="must be 1-128 letters"):
        tracker.start_run(tenant, pipeline_run_id)
    assert (
        mlflow_client.search_runs([e.experiment_id for e in mlflow_client.search_experiments()])
        == []
    )


def test_a_resumed_training_logs_each_step_once(
    tracker: Tracker, mlflow_client: MlflowClient
) -> None:
    """The train step asks ``last_step`` before training and logs only later steps: a resume
    from a checkpoint at step 2 replays steps 3..5, which MLflow already has."""
    run_id = tracker.start_run("acme", PIPELINE_RUN)
    assert tracker.last_step(run_id, "train_loss") is None
    for step in range(1, 6):  # the first attempt, stopped after step 5
        tracker.log_metrics(run_id, {"train_loss": 1.0 / step}, step=step)
    logged = tracker.last_step(run_id, "train_loss")
    assert logged == 5
    for step in range(3, 9):  # the resumed attempt, from the checkpoint at step 2
        if step > logged:
            tracker.log_metrics(run_id, {"train_loss": 0.5 / step}, step=step)
    steps = [m.step for m in mlflow_client.get_metric_history(run_id, "train_loss")]
    assert sorted(steps) == list(range(1, 9))  # one point per step, no duplicates
