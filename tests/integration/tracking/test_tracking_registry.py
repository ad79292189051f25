"""The registry through the Tracker: versions, aliases, idempotency, promotion, download."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from tuneloop.errors import InvalidInputError, NotFoundError
from tuneloop.tracking import Tracker

MODEL = "tuneloop-acme"


def _candidate(tracker: Tracker, adapter_dir: Path, pipeline_run_id: str) -> int:
    run_id = tracker.start_run("acme", pipeline_run_id)
    info = tracker.register_candidate(
        "acme", run_id, adapter_dir, dataset_hash=f"sha256-{pipeline_run_id}"
    )
    return info.version


def test_register_candidate_makes_a_challenger_version_from_the_run_artifacts(
    tracker: Tracker, mlflow_client: MlflowClient, adapter_dir: Path
) -> None:
    run_id = tracker.start_run("acme", "p-001")

    info = tracker.register_candidate(
        "acme", run_id, adapter_dir, dataset_hash="sha256-abc", tags={"base_model": "tiny"}
    )

    assert (info.name, info.version, info.aliases) == (MODEL, 1, ("challenger",))
    assert (info.pipeline_run_id, info.dataset_hash) == ("p-001", "sha256-abc")
    by_alias = mlflow_client.get_model_version_by_alias(MODEL, "challenger")
    assert int(by_alias.version) == 1
    assert by_alias.source == f"runs:/{run_id}/adapter"
    assert by_alias.run_id == run_id
    assert by_alias.tags["tuneloop.pipeline_run_id"] == "p-001"
    assert by_alias.tags["tuneloop.dataset_hash"] == "sha256-abc"
    assert by_alias.tags["base_model"] == "tiny"
    logged = {a.path for a in mlflow_client.list_artifacts(run_id, "adapter")}
    assert logged == {"adapter/adapter_config.json", "adapter/adapter_model.safetensors"}


def test_register_candidate_twice_registers_once(
    tracker: Tracker, mlflow_client: MlflowClient, adapter_dir: Path
) -> None:
    run_id = tracker.start_run("acme", "p-001")
    first = tracker.register_candidate("acme", run_id, adapter_dir, dataset_hash="h")
    # A crash between registering and setting the alias: the retry must repair it.
    mlflow_client.delete_registered_model_alias(MODEL, "challenger")

    second = tracker.register_candidate("acme", run_id, adapter_dir, dataset_hash="h")

    assert second.version == first.version == 1
    assert len(mlflow_client.search_model_versions(f"name = '{MODEL}'")) == 1
    assert int(mlflow_client.get_model_version_by_alias(MODEL, "challenger").version) == 1


def test_the_newest_candidate_is_the_challenger(
    tracker: Tracker, mlflow_client: MlflowClient, adapter_dir: Path
) -> None:
    assert [_candidate(tracker, adapter_dir, p) for p in ("p-001", "p-002")] == [1, 2]
    assert int(mlflow_client.get_model_version_by_alias(MODEL, "challenger").version) == 2
    assert [v.version for v in tracker.list_versions("acme")] == [1, 2]


def test_promote_moves_champion_and_returns_the_previous_one(
    tracker: Tracker, mlflow_client: MlflowClient, adapter_dir: Path
) -> None:
    v1, v2 = (_candidate(tracker, adapter_dir, p) for p in ("p-001", "p-002"))

    first = tracker.promote("acme", v1)
    assert first.champion.version == v1
    assert first.previous is None

    second = tracker.promote("acme", v2)
    assert int(mlflow_client.get_model_version_by_alias(MODEL, "champion").version) == v2
    assert second.previous is not None
    assert second.previous.version == v1
    assert second.champion.aliases == ("challenger", "champion")

    retried = tracker.promote("acme", v2)  # the step ran again after a crash
    assert retried.previous is not None
    assert retried.previous.version == v1

    rollback = tracker.promote("acme", v1)
    assert int(mlflow_client.get_model_version_by_alias(MODEL, "champion").version) == v1
    assert rollback.previous is not None
    assert rollback.previous.version == v2


def test_get_alias_and_list_versions(tracker: Tracker, adapter_dir: Path) -> None:
    assert tracker.get_alias("acme", "champion") is None  # no registered model yet
    assert tracker.list_versions("acme") == []
    v1, v2 = (_candidate(tracker, adapter_dir, p) for p in ("p-001", "p-002"))
    tracker.promote("acme", v1)

    champion = tracker.get_alias("acme", "champion")
    challenger = tracker.get_alias("acme", "challenger")
    assert champion is not None
    assert challenger is not None
    assert (champion.version, challenger.version) == (v1, v2)
    assert [(v.version, v.aliases) for v in tracker.list_versions("acme")] == [
        (v1, ("champion",)),
        (v2, ("challenger",)),
    ]
    assert tracker.get_alias("acme", "staging") is None


def test_download_adapter_returns_the_registered_files(
    tracker: Tracker, adapter_dir: Path, tmp_path: Path
) -> None:
    version = _candidate(tracker, adapter_dir, "p-001")

    local = tracker.download_adapter("acme", version, tmp_path / "download")

    assert sorted(p.name for p in local.iterdir()) == sorted(p.name for p in adapter_dir.iterdir())
    for file in adapter_dir.iterdir():
        assert (local / file.name).read_bytes() == file.read_bytes()


def test_unknown_version_is_not_found(tracker: Tracker, adapter_dir: Path) -> None:
    _candidate(tracker, adapter_dir, "p-001")
    with pytest.raises(NotFoundError):
        tracker.promote("acme", 7)


def test_register_candidate_refuses_runs_of_another_tenant_and_empty_adapters(
    tracker: Tracker, adapter_dir: Path, tmp_path: Path
) -> None:
    globex_run = tracker.start_run("globex", "p-001")
    with pytest.raises(InvalidInputError, match=r"not started by Tracker\.start_run for acme"):
        tracker.register_candidate("acme", globex_run, adapter_dir, dataset_hash="h")
    empty = tmp_path / "empty"
    empty.mkdir()
    acme_run = tracker.start_run("acme", "p-001")
    with pytest.raises(InvalidInputError, match="missing or empty"):
        tracker.register_candidate("acme", acme_run, empty, dataset_hash="h")
    assert tracker.list_versions("acme") == []
