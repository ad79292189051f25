"""``ui_command`` and the promise that importing tuneloop's tracking does not import mlflow."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tuneloop.errors import InvalidInputError
from tuneloop.tracking import ui_command


def test_ui_command_points_at_the_store_by_absolute_path(tmp_path: Path) -> None:
    # cwd is tmp_path (see tests/conftest.py), so the relative URI is resolved against it.
    command = ui_command("sqlite:///workspace/mlflow.db")

    assert shlex.split(command) == [
        "mlflow",
        "ui",
        "--backend-store-uri",
        f"sqlite:///{tmp_path.resolve()}/workspace/mlflow.db",
        "--artifacts-destination",
        (tmp_path.resolve() / "workspace" / "mlartifacts").as_uri(),
    ]
    assert shlex.split(ui_command("sqlite:////srv/t l/mlflow.db", port=5055))[-2:] == [
        "--port",
        "5055",
    ]
    assert "'sqlite:////srv/t l/mlflow.db'" in ui_command("sqlite:////srv/t l/mlflow.db")


@pytest.mark.parametrize(
    "uri", ["http://mlflow.internal:5000", "postgresql://tuneloop:s3cret@db/mlflow"]
)
def test_ui_command_is_only_for_the_embedded_store(uri: str) -> None:
    with pytest.raises(InvalidInputError, match="not an embedded SQLite store") as error:
        ui_command(uri)
    assert "s3cret" not in str(error.value)


def test_importing_tracking_and_building_a_tracker_does_not_import_mlflow(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from tuneloop.tracking import Tracker\n"
        f"Tracker('sqlite:///{tmp_path}/mlflow.db')\n"
        "assert 'mlflow' not in sys.modules, 'mlflow was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
