"""``shared_metrics_dir``: PROMETHEUS_MULTIPROC_DIR for several workers only, always empty."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tuneloop.cli.serve import MULTIPROC_ENV, shared_metrics_dir


@pytest.fixture(autouse=True)
def _no_multiproc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)


def test_one_worker_changes_nothing(tmp_path: Path) -> None:
    with shared_metrics_dir(tmp_path / "workspace", workers=1) as path:
        assert path is None
        assert MULTIPROC_ENV not in os.environ
    assert not (tmp_path / "workspace").exists()


def test_several_workers_get_a_fresh_directory_removed_at_exit(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    with shared_metrics_dir(workspace, workers=2) as first:
        assert first is not None and first.is_dir() and first.parent == workspace.resolve()
        assert os.environ[MULTIPROC_ENV] == str(first)
        assert list(first.iterdir()) == []
        (first / "counter_123.db").write_bytes(b"a worker's values")
    assert MULTIPROC_ENV not in os.environ
    assert not first.exists()
    (workspace / "prometheus-multiproc-crashed").mkdir()  # a server killed before cleaning up
    with shared_metrics_dir(workspace, workers=2) as second:
        assert second is not None and second.name != "prometheus-multiproc-crashed"
        assert list(second.iterdir()) == []


def test_an_operator_directory_is_kept_but_emptied_of_old_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"old")
    (given / "README").write_text("not ours")
    monkeypatch.setenv(MULTIPROC_ENV, str(given))
    with shared_metrics_dir(tmp_path / "workspace", workers=4) as path:
        assert path == given
        assert sorted(p.name for p in given.iterdir()) == ["README"]
    assert os.environ[MULTIPROC_ENV] == str(given)
    assert given.is_dir()
