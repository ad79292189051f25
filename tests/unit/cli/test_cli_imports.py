"""Importing the CLI loads none of the heavy libraries (they cost seconds at every start;
bench/cli_start.py times it): a fresh interpreter, its ``sys.modules`` checked."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("scipy", "torch", "transformers", "mlflow", "fastapi", "alembic", "psycopg", "jwt")


def test_importing_the_cli_imports_no_heavy_library() -> None:
    code = (
        "import json, sys, tuneloop.cli.main; "
        f"print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout) == []


def test_statistics_still_load_scipy_when_used() -> None:
    code = (
        "import sys; from tuneloop.experiments.stats.srm import srm_check; "
        "assert 'scipy' not in sys.modules; "
        "srm_check([500, 500], [0.5, 0.5]); print('scipy' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "True"
