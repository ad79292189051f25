"""`tuneloop demo`, the README's main job, from an empty folder as a newcomer runs it: the
first candidate becomes champion, the second wins its A/B test and rolls out to champion,
the third wins its test but is rolled back by its error trigger."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuneloop.app.runs import list_runs
from tuneloop.config import Settings
from tuneloop.wiring import engine_for, release_engine

pytest.importorskip("mlflow", reason="the train extra (mlflow) is not installed")


@pytest.mark.slow
def test_the_demo_tells_the_whole_story(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNELOOP_")}
    command = [sys.executable, "-m", "tuneloop.cli.main", "demo"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    settings = Settings(workspace=tmp_path / ".tuneloop")
    try:
        runs, total = list_runs(engine_for(settings), "demo", limit=10)
        # ids are ft-pipeline-<simulated day>-<n>: in the order the demo started them
        story = [(run.trigger, run.status) for run in sorted(runs, key=lambda r: r.id)]
    finally:
        release_engine(settings)
    assert total == 3
    assert story == [("manual", "promoted"), ("data", "promoted"), ("data", "rolled_back")]
    assert "error_rate_above_5_percent" in done.stdout
