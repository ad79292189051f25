"""The HTTP benchmarks (bench/api.py, bench/route.py) start their servers, drive them and
print their ratios at smoke size (the numbers mean nothing here; nothing about timing is
asserted). The scripts exit non-zero when one of our endpoints does not answer 200."""

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
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def postgres() -> str:
    if not PG_URL:
        if os.environ.get("TUNELOOP_REQUIRE_SERVICES") == "1":
            pytest.fail("TUNELOOP_REQUIRE_SERVICES=1 but TUNELOOP_TEST_DATABASE_URL is unset")
        pytest.skip("needs PostgreSQL: set TUNELOOP_TEST_DATABASE_URL")
    return PG_URL


def test_api_benchmark_runs_on_sqlite() -> None:
    out = run("api.py")
    for endpoint in ("POST /v1/events", "GET /fine-tuning/status/{id}"):
        assert f"ratio ours / bare  {endpoint}" in out, out


def test_api_benchmark_measures_the_lists() -> None:
    out = run("api.py", "--endpoints", "datasets", "deployments", "ab-tests")
    for path in ("/datasets", "/deployments", "/evaluation/ab-tests"):
        assert f"ratio ours / bare  GET {path} " in out, out
    assert "errors in" not in out, out  # both servers answered every request 200


def test_api_benchmark_runs_on_postgres() -> None:
    out = run("api.py", "--database-url", postgres())
    assert "ratio ours / bare  POST /v1/events" in out, out


def test_route_benchmark_runs() -> None:
    out = run("route.py")
    for source in ("experiment", "deployment", "champion"):
        assert f"RoutingTable.route, {source}" in out, out
    assert "bare FastAPI" in out and "ratio ours / bare" in out, out
