"""A job's output directory: identity, complete checkpoints, cleanup after an abort."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuneloop.errors import ConflictError
from tuneloop.train.workdir import (
    after_abort,
    claim,
    complete_checkpoints,
    dataset_fingerprint,
    remove_partial,
)


def _checkpoint(root: Path, step: int, *, complete: bool = True) -> Path:
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "adapter_model.safetensors").write_bytes(b"x")
    if complete:
        (path / "trainer_state.json").write_text("{}")
    return path


def test_a_directory_belongs_to_one_request(tmp_path: Path) -> None:
    claim(tmp_path, {"dataset": "a"}, resume=True)
    claim(tmp_path, {"dataset": "a"}, resume=True)  # the same job again: fine
    with pytest.raises(ConflictError):
        claim(tmp_path, {"dataset": "b"}, resume=True)


def test_not_resuming_starts_over(tmp_path: Path) -> None:
    claim(tmp_path, {"dataset": "a"}, resume=True)
    _checkpoint(tmp_path, 10)
    claim(tmp_path, {"dataset": "b"}, resume=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["request.json"]
    assert json.loads((tmp_path / "request.json").read_text()) == {"dataset": "b"}


def test_only_complete_checkpoints_count_in_step_order(tmp_path: Path) -> None:
    for step in (20, 3, 100):
        _checkpoint(tmp_path, step)
    _checkpoint(tmp_path, 120, complete=False)  # a crash while it was written
    assert [p.name for p in complete_checkpoints(tmp_path)] == [
        "checkpoint-3",
        "checkpoint-20",
        "checkpoint-100",
    ]
    removed = remove_partial(tmp_path)
    assert [p.name for p in removed] == ["checkpoint-120"]
    assert not (tmp_path / "checkpoint-120").exists()


def test_a_checkpoint_killed_while_its_marker_was_written_is_partial(tmp_path: Path) -> None:
    _checkpoint(tmp_path, 10)
    cut = _checkpoint(tmp_path, 20, complete=False)
    (cut / "trainer_state.json").write_text('{"global_step": 2')  # SIGKILL mid-write
    _checkpoint(tmp_path, 30, complete=False)
    (tmp_path / "checkpoint-30" / "trainer_state.json").write_text("")
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-10"]
    assert sorted(p.name for p in remove_partial(tmp_path)) == ["checkpoint-20", "checkpoint-30"]


def test_after_abort_keeps_finished_epochs_or_deletes_all(tmp_path: Path) -> None:
    job = tmp_path / "job"
    claim(job, {"dataset": "a"}, resume=True)
    kept = _checkpoint(job, 8)
    _checkpoint(job, 16, complete=False)
    (job / ".staging-adapter").mkdir()
    assert after_abort(job, "keep_checkpoints") == (job / "checkpoint-8", job / "request.json")
    assert kept.is_dir()
    assert after_abort(job, "delete") == ()
    assert not job.exists()


def test_dataset_fingerprint_prefers_the_manifest_hash(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text('{"messages": []}\n')
    by_content = dataset_fingerprint(tmp_path)
    assert len(by_content) == 64
    (tmp_path / "train.jsonl").write_text('{"messages": [1]}\n')
    assert dataset_fingerprint(tmp_path) != by_content
    (tmp_path / "manifest.json").write_text(json.dumps({"content_hash": "abc123"}))
    assert dataset_fingerprint(tmp_path) == "abc123"
