"""The documented pipeline endpoints over HTTP: start, status, abort, runs and models.

Cheap checks (validation, 404, 403, tenant isolation, a not-enough-data run) need no
training. The training tests run the real pipeline in the app's background thread on a
tiny model (built once per session, copied into each workspace) with one epoch.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_helpers import JWT_SECRET, TENANT_A, Keys, auth, with_api
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tuneloop.api.app import create_app
from tuneloop.app.progress import StepState, estimated_completion, progress_of
from tuneloop.config import Settings
from tuneloop.domain.runs import RunStatus
from tuneloop.pipeline.service import start_run
from tuneloop.posts.schema import PostIn
from tuneloop.store import runs as repo
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.store.pipeline_models import TrainingJob
from tuneloop.store.posts import upsert_posts
from tuneloop.store.schedules import ensure_schedule
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts

SPEC = SyntheticSpec(posts=1600, seed=5)
STAGE_STATES = {"completed", "in_progress", "pending", "failed", "skipped"}
FINISHED = {
    "succeeded",
    "not_enough_data",
    "no_new_data",
    "gated",
    "rejected",
    "inconclusive",
    "promoted",
    "rolled_back",
    "failed",
    "aborted",
}


@pytest.fixture
def api_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The API settings, with one training epoch so a run takes seconds."""
    monkeypatch.setenv("TUNELOOP_TRAINING__EPOCHS", "1")
    configured = with_api(settings, jwt_secret=JWT_SECRET)
    training = configured.training.model_copy(update={"epochs": 1})
    return configured.model_copy(update={"training": training})


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch", reason="the train extra (torch) is not installed")
    pytest.importorskip("mlflow", reason="the train extra (mlflow) is not installed")
    from tuneloop.train.tiny import ensure_tiny_base

    folder = tmp_path_factory.mktemp("tiny") / "base"
    # A base from a slice of the posts pre-trains in about half the time and is as usable.
    posts = [(p["hook"], p["body"]) for p in generate_posts(SPEC)][:300]
    return ensure_tiny_base(folder, lambda: posts)


def seed(engine: Engine, spec: SyntheticSpec, tenant: str = TENANT_A) -> None:
    rows = generate_posts(spec, now=datetime.now(UTC))
    upsert_posts(engine, tenant, (PostIn.model_construct(**row) for row in rows))


@pytest.fixture
def trainable(api_settings: Settings, engine: Engine, tiny_base: Path) -> Settings:
    """Tenant A has 1600 posts and its tiny base model in the workspace."""
    seed(engine, SPEC)
    shutil.copytree(tiny_base, api_settings.workspace / "models" / f"tiny-{TENANT_A}")
    return api_settings


def start(client: TestClient, key: str, body: dict[str, Any] | None = None) -> Any:
    return client.post("/fine-tuning/start", json=body, headers=auth(key))


def status_of(client: TestClient, key: str, run_id: str) -> dict[str, Any]:
    response = client.get(f"/fine-tuning/status/{run_id}", headers=auth(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def poll(
    client: TestClient,
    key: str,
    run_id: str,
    until: Callable[[dict[str, Any]], bool],
    *,
    seconds: float = 150.0,
) -> list[dict[str, Any]]:
    """Status answers every 0.3 s until ``until`` holds; all of them, the last one last."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append(status_of(client, key, run_id))
        if until(seen[-1]):
            return seen
        time.sleep(0.3)
    pytest.fail(f"run {run_id} never got there; last status {seen[-1] if seen else None}")


def metric(client: TestClient, name: str) -> float:
    """One unlabelled sample of the Prometheus exposition."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exposed")


def wait_for_metric(client: TestClient, name: str, above: float) -> float:
    """The worker records metrics just after the run's final state is stored: wait for it."""
    deadline = time.monotonic() + 10
    while (value := metric(client, name)) <= above and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def assert_documented_start(body: dict[str, Any]) -> None:
    assert body["status"] == "started"
    assert isinstance(body["pipeline_id"], str) and body["pipeline_id"].startswith("ft-pipeline-")
    assert set(body["model_version"]) == {
        "model_id",
        "version",
        "training_job_id",
        "base_model",
        "status",
    }
    assert set(body["training_data"]) == {"hook_examples", "body_examples", "total_records"}
    assert isinstance(body["execution_time_seconds"], float)
    assert set(body["memory_usage"]) == {"initial_mb", "peak_mb", "final_mb"}


def assert_documented_status(body: dict[str, Any]) -> None:
    assert isinstance(body["pipeline_id"], str) and isinstance(body["status"], str)
    assert set(body["progress"]) == {
        "data_collection",
        "model_training",
        "evaluation",
        "deployment",
    }
    assert set(body["progress"].values()) <= STAGE_STATES
    assert body["current_stage"] is None or isinstance(body["current_stage"], str)
    assert body["estimated_completion"] is None or datetime.fromisoformat(
        body["estimated_completion"]
    )
    assert set(body["metrics"]) == {
        "training_examples",
        "training_duration_minutes",
        "memory_efficiency_mb_per_example",
    }


# --- cheap: no training -------------------------------------------------------------------


INVALID_STARTS: list[dict[str, Any]] = [
    {"config": {"training_data_threshold": 0}},
    {"config": {"engagement_threshold": 1.5}},
    {"config": {"weekly_schedule": "every sunday at two"}},
    {"config": {"weekly_schedule": "99 99 99 99 99"}},  # five fields, none in range
    {"config": {"a_b_test_duration_hours": 0}},
    {"config": {"learning_rate": 0.1}},
    {"force_run": "maybe"},
    {"config": [1, 2]},
]


def test_an_invalid_start_request_is_422_and_starts_nothing(
    client: TestClient, keys: Keys, db: Engine
) -> None:
    for body in INVALID_STARTS:
        response = start(client, keys.operator, body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["type"] == "invalid_input"
    assert repo.list_runs(db, TENANT_A)[1] == 0


def test_unknown_ids_are_404(client: TestClient, keys: Keys) -> None:
    headers = auth(keys.admin)
    for method, path in [
        ("GET", "/fine-tuning/status/ft-pipeline-20250102-001"),
        ("POST", "/fine-tuning/abort/ft-pipeline-20250102-001"),
        ("GET", "/models/tuneloop-acme/1"),
    ]:
        response = client.request(method, path, headers=headers)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["type"] == "not_found"


def test_a_viewer_can_read_but_not_start_or_abort(client: TestClient, keys: Keys) -> None:
    assert start(client, keys.viewer).status_code == 403
    abort = client.post("/fine-tuning/abort/ft-pipeline-20250102-001", headers=auth(keys.viewer))
    assert abort.status_code == 403
    runs = client.get("/fine-tuning/runs", headers=auth(keys.viewer))
    assert runs.status_code == 200
    assert runs.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
    models = client.get("/models", headers=auth(keys.viewer))
    assert models.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}


def test_not_enough_data_shows_in_status_and_is_private_to_the_tenant(
    client: TestClient, keys: Keys, db: Engine
) -> None:
    seed(db, SyntheticSpec(posts=12, seed=3))
    runs_before = metric(client, "fine_tuning_pipeline_execution_duration_seconds_count")
    started = start(client, keys.operator, {"config": {"training_data_threshold": 500}})
    assert started.status_code == 202, started.text
    body = started.json()
    assert_documented_start(body)
    assert body["continued"] is False
    assert body["model_version"]["model_id"] is None
    run_id = body["pipeline_id"]

    final = poll(client, keys.viewer, run_id, lambda s: s["finished"])[-1]
    assert_documented_status(final)
    assert final["status"] == "not_enough_data"
    assert final["progress"] == {
        "data_collection": "completed",
        "model_training": "skipped",
        "evaluation": "skipped",
        "deployment": "skipped",
    }
    assert final["current_stage"] is None
    assert final["message"]
    assert final["training_data"]["total_records"] is not None
    assert final["model_version"]["training_job_id"] is None
    assert final["estimated_completion"] == final["finished_at"]
    after = wait_for_metric(
        client, "fine_tuning_pipeline_execution_duration_seconds_count", runs_before
    )
    assert after == runs_before + 1

    other = auth(keys.other_admin)
    assert client.get(f"/fine-tuning/status/{run_id}", headers=other).status_code == 404
    assert client.post(f"/fine-tuning/abort/{run_id}", headers=other).status_code == 404
    assert client.get("/fine-tuning/runs", headers=other).json()["total"] == 0
    page = client.get("/fine-tuning/runs?limit=1", headers=auth(keys.viewer)).json()
    assert page["total"] == 1 and page["items"][0]["pipeline_id"] == run_id
    assert page["items"][0]["status"] == "not_enough_data"
    finished = client.post(f"/fine-tuning/abort/{run_id}", headers=auth(keys.operator))
    assert finished.status_code == 409


def test_a_start_with_a_weekly_schedule_sets_the_tenants_schedule(
    client: TestClient, keys: Keys, db: Engine
) -> None:
    started = start(client, keys.operator, {"config": {"weekly_schedule": "30 4 * * 1"}})
    assert started.status_code == 202, started.text
    poll(client, keys.viewer, started.json()["pipeline_id"], lambda s: s["finished"])
    assert ensure_schedule(db, TENANT_A, now=datetime.now(UTC)).cron == "30 4 * * 1"
    assert ensure_schedule(db, "tenant-b", now=datetime.now(UTC)).cron is None


def test_a_failed_run_is_continued_not_restarted(
    client: TestClient, keys: Keys, db: Engine, api_settings: Settings
) -> None:
    seed(db, SyntheticSpec(posts=12, seed=3))
    failed = start_run(db, api_settings, TENANT_A)
    repo.move_run(db, TENANT_A, failed.id, RunStatus.FAILED, error="collect: disk full")

    response = start(client, keys.operator, {"force_run": True})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["pipeline_id"] == failed.id and body["continued"] is True
    # Reopened before the answer, so no poll can mistake the old "failed" for the outcome.
    assert body["run_status"] == "running"
    final = poll(client, keys.viewer, failed.id, lambda s: s["finished"])[-1]
    assert final["status"] == "not_enough_data"
    assert final["steps"][0]["attempts"] == 1
    assert repo.list_runs(db, TENANT_A)[1] == 1


def test_new_true_escapes_a_failed_run(
    client: TestClient, keys: Keys, db: Engine, api_settings: Settings
) -> None:
    seed(db, SyntheticSpec(posts=12, seed=3))
    failed = start_run(db, api_settings, TENANT_A)
    repo.move_run(db, TENANT_A, failed.id, RunStatus.FAILED, error="train: keeps failing")

    response = start(client, keys.operator, {"new": True})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["pipeline_id"] != failed.id and body["continued"] is False
    final = poll(client, keys.viewer, body["pipeline_id"], lambda s: s["finished"])[-1]
    assert final["status"] == "not_enough_data" and final["trigger"] == "manual"
    assert repo.get_run(db, TENANT_A, failed.id).status == "failed"  # left as it was
    assert repo.list_runs(db, TENANT_A)[1] == 2


def test_the_estimate_is_elapsed_time_per_step_done_times_steps_left() -> None:
    started = datetime(2025, 1, 2, 2, 0, tzinfo=UTC)
    now = started + timedelta(minutes=10)
    steps = [
        StepState("collect", "succeeded"),
        StepState("train", "running"),
        StepState("register", "pending"),
        StepState("evaluate", "pending"),
    ]
    kwargs: dict[str, Any] = {"started_at": started, "finished_at": None, "now": now}
    # 1.5 steps done in 10 min: 2.5 left take 10 / 1.5 * 2.5 min.
    eta = estimated_completion(steps, run_status="running", running_fraction=0.5, **kwargs)
    assert eta == now + timedelta(minutes=10 / 1.5 * 2.5)
    assert estimated_completion(steps[1:], run_status="running", **kwargs) is None
    assert progress_of(steps, run_status="running") == {
        "data_collection": "completed",
        "model_training": "in_progress",
        "evaluation": "pending",
        "deployment": "pending",
    }


# --- training -----------------------------------------------------------------------------


@pytest.mark.train
@pytest.mark.slow
def test_a_started_run_trains_and_reports_every_documented_field(
    client: TestClient, keys: Keys, trainable: Settings
) -> None:
    examples_before = metric(client, "fine_tuning_pipeline_training_examples_total")
    started = start(client, keys.operator, {"config": {"training_data_threshold": 50}})
    assert started.status_code == 202, started.text
    body = started.json()
    assert_documented_start(body)
    run_id = body["pipeline_id"]

    again = start(client, keys.admin)
    assert again.status_code == 409
    assert run_id in again.json()["error"]["message"]

    seen = poll(client, keys.viewer, run_id, lambda s: s["finished"])
    assert not seen[0]["finished"] and seen[0]["current_stage"] is not None
    final = seen[-1]
    assert_documented_status(final)
    # The tenant has no champion: a candidate that passes offline evaluation becomes the
    # first one (bootstrap = "promote"), with no A/B test and no rollout.
    assert final["status"] in {"promoted", "gated"}, final["error"]
    promoted = final["status"] == "promoted"
    assert final["progress"]["deployment"] == ("completed" if promoted else "skipped")
    assert final["trigger"] == "manual"
    assert final["progress"]["data_collection"] == "completed"
    assert final["progress"]["model_training"] == "completed"
    assert final["progress"]["evaluation"] == "completed"
    metrics = final["metrics"]
    assert isinstance(metrics["training_examples"], int) and metrics["training_examples"] > 0
    assert metrics["training_duration_minutes"] > 0
    assert metrics["memory_efficiency_mb_per_example"] > 0
    assert len(final["losses"]) > 1
    assert final["memory_usage"]["peak_mb"] >= final["memory_usage"]["initial_mb"] > 0
    version = final["model_version"]
    assert version["training_job_id"] == f"{run_id}-train"
    assert version["model_id"] == f"tuneloop-{TENANT_A}"
    assert version["status"] == ("champion" if promoted else "challenger")
    assert [s["status"] for s in final["steps"]] == (
        ["succeeded"] * 5 + ["skipped"] * 2 if promoted else ["succeeded"] * 4 + ["skipped"] * 3
    )

    examples_after = wait_for_metric(
        client, "fine_tuning_pipeline_training_examples_total", examples_before
    )
    assert examples_after == examples_before + metrics["training_examples"]
    assert metric(client, "fine_tuning_pipeline_memory_peak_mb") > 0

    models = client.get("/models", headers=auth(keys.viewer)).json()
    assert models["total"] == 1 and models["items"][0]["run_id"] == run_id
    path = f"/models/{version['model_id']}/{version['version']}"
    detail = client.get(path, headers=auth(keys.viewer))
    assert detail.status_code == 200 and detail.json()["training_job_id"] == f"{run_id}-train"
    assert client.get(path, headers=auth(keys.other_admin)).status_code == 404


@pytest.mark.train
@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_abort_stops_a_training_run_and_cleans_up(long_training: Settings, engine: Engine) -> None:
    operator = create_api_key(engine, TENANT_A, role=Role.OPERATOR).plaintext
    with TestClient(create_app(long_training)) as client:
        run_id = start(client, operator).json()["pipeline_id"]
        poll(client, operator, run_id, lambda s: (s["training_progress"] or {}).get("step", 0) > 0)
        response = client.post(
            f"/fine-tuning/abort/{run_id}",
            json={"reason": "changed my mind"},
            headers=auth(operator),
        )
        assert response.status_code == 200, response.text
        aborted = response.json()
        assert aborted["pipeline_id"] == run_id and aborted["status"] == "aborted"
        assert aborted["cleanup_status"] == "completed"
        assert aborted["reason"] == "changed my mind"
        assert {"temporary_files", "training_job_cancelled"} <= set(aborted["resources_cleaned"])
        final = status_of(client, operator, run_id)
        assert final["status"] == "aborted" and final["progress"]["deployment"] == "skipped"
        assert not (long_training.workspace / "runs" / TENANT_A / run_id).exists()

        # An aborted run is not continued: a new one starts.
        second = start(client, operator).json()
        assert second["continued"] is False and second["pipeline_id"] != run_id


def _epochs(settings: Settings, monkeypatch: pytest.MonkeyPatch, epochs: int) -> Settings:
    monkeypatch.setenv("TUNELOOP_TRAINING__EPOCHS", str(epochs))
    training = settings.training.model_copy(update={"epochs": epochs})
    return settings.model_copy(update={"training": training})


@pytest.fixture
def two_epochs(trainable: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Two epochs: the first one's checkpoint is on disk while the second trains."""
    return _epochs(trainable, monkeypatch, 2)


@pytest.fixture
def long_training(trainable: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Far more epochs than a test waits for: an abort always finds training running
    (with the default, a loaded CI machine could see the run end before its abort)."""
    return _epochs(trainable, monkeypatch, 200)


@pytest.mark.train
@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_server_shutdown_interrupts_a_run_and_the_next_start_continues_it(
    two_epochs: Settings, engine: Engine
) -> None:
    from mlflow import MlflowClient

    from tuneloop.train.workdir import complete_checkpoints

    operator = create_api_key(engine, TENANT_A, role=Role.OPERATOR).plaintext
    train_dir = two_epochs.workspace / "runs" / TENANT_A
    with TestClient(create_app(two_epochs)) as client:
        run_id = start(client, operator).json()["pipeline_id"]
        train_dir = train_dir / run_id / "train"
        # Stop during the second epoch, with the first one's checkpoint complete on disk.
        poll(client, operator, run_id, lambda s: bool(complete_checkpoints(train_dir)))
    kept = complete_checkpoints(train_dir)
    assert kept, "the interruption must keep the complete checkpoints"

    stopped = repo.get_run(engine, TENANT_A, run_id)
    assert stopped.status == "running" and stopped.lease_owner is None
    assert not stopped.abort_requested and stopped.cleanup is None
    train = next(s for s in repo.steps_of(engine, TENANT_A, run_id) if s.name == "train")
    assert train.status == "pending" and train.error == "interrupted: server_shutdown"

    with TestClient(create_app(two_epochs)) as client:  # the restarted server
        status = status_of(client, operator, run_id)
        assert status["run_status"] == "running" and status["training_progress"] is None
        assert status["status"] == "interrupted" and status["estimated_completion"] is None
        assert "server_shutdown" in status["message"]
        assert status["model_version"]["status"] == "interrupted"
        again = start(client, operator).json()
        assert again["pipeline_id"] == run_id and again["continued"] is True
        final = poll(client, operator, run_id, lambda s: s["finished"])[-1]
    assert final["status"] in {"promoted", "gated"}, final["error"]
    attempts = [s["attempts"] for s in final["steps"]]
    assert attempts[:4] == [1, 2, 1, 1] and attempts[5:] == [0, 0]
    assert repo.list_runs(engine, TENANT_A)[1] == 1
    train = next(s for s in repo.steps_of(engine, TENANT_A, run_id) if s.name == "train")
    assert train.output is not None and train.output["resumed_from"] == str(kept[-1])
    with Session(engine) as session:
        jobs = session.scalars(select(TrainingJob)).all()
    assert len(jobs) == 1 and jobs[0].attempts == 2 and jobs[0].status == "succeeded"
    mlflow = MlflowClient(tracking_uri=two_epochs.mlflow_tracking_uri)
    assert len(mlflow.search_model_versions(f"name='tuneloop-{TENANT_A}'")) == 1
    experiment = mlflow.get_experiment_by_name(f"tuneloop-{TENANT_A}")
    assert len(mlflow.search_runs([experiment.experiment_id])) == 1
