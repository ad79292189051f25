"""Every benchmark script runs at a tiny size and prints its ratio (the numbers mean nothing
at this size; the full runs and their results are in the README)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
PG_URL = os.environ.get("TUNELOOP_TEST_DATABASE_URL")

pytestmark = pytest.mark.slow


def run(script: str, *args: str) -> str:
    env = dict(os.environ)
    if PG_URL:
        env["TUNELOOP_BENCH_DATABASE_URL"] = PG_URL
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_cli_start_benchmark_runs() -> None:
    out = run("cli_start.py", "--rounds", "1", "--no-serve")
    assert "ratio vs python -c pass" in out and "heavy modules" in out


def test_assign_benchmark_runs() -> None:
    assert "ratio" in run("assign.py", "--units", "20000", "--rounds", "1")


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("collect.py", ("--posts", "3000", "--small", "300")),
        ("ingest.py", ("--events", "3000", "--batch", "1000", "--rounds", "1")),
        ("consume.py", ("--events", "3000", "--batch", "1000", "--rounds", "1")),
        ("analyze.py", ("--sizes", "1000", "5000", "--units", "100", "--rounds", "1")),
    ],
)
def test_postgres_benchmarks_run(script: str, args: tuple[str, ...]) -> None:
    if not PG_URL:
        if os.environ.get("TUNELOOP_REQUIRE_SERVICES") == "1":
            pytest.fail("TUNELOOP_REQUIRE_SERVICES=1 but TUNELOOP_TEST_DATABASE_URL is unset")
        pytest.skip("needs PostgreSQL: set TUNELOOP_TEST_DATABASE_URL")
    assert "ratio" in run(script, *args)


@pytest.mark.train
def test_train_benchmark_runs(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the train extra (torch) is not installed")
    out = run(
        "train.py", "--posts", "300", "--steps", "5", "--rounds", "1", "--work", str(tmp_path)
    )
    assert "ours / reference:" in out and "goal" in out


def test_proxy_faults_benchmark_runs() -> None:
    out = run("proxy_faults.py", "--calls", "200")
    assert "ratio client/upstream errors" in out and "recovery after a full outage" in out
