"""Importing the CLI loads none of the heavy libraries (they cost seconds at every start;
bench/cli_start.py times it), and ``tuneloop --help`` / ``tuneloop runs --help`` load no
command module they do not show: a fresh interpreter, its ``sys.modules`` checked."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("scipy", "torch", "transformers", "mlflow", "fastapi", "alembic", "psycopg", "jwt")
# What a command pays for when it runs, never a help page: SQLAlchemy, numpy, the settings
# models (pydantic-settings), the wiring and the application layer.
NOT_FOR_HELP = (
    *HEAVY,
    "sqlalchemy",
    "numpy",
    "pydantic_settings",
    "tuneloop.config",
    "tuneloop.wiring",
    "tuneloop.app",
    "tuneloop.pipeline.outputs",
)


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


def modules_after(argv: list[str]) -> list[str]:
    """The modules a fresh ``tuneloop`` process has loaded when it exits after ``argv``."""
    code = (
        "import atexit, json, sys; "
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr)); "
        f"sys.argv = ['tuneloop', *{argv!r}]; "
        "from tuneloop.cli.main import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert "Usage: tuneloop" in result.stdout
    return list(json.loads(result.stderr.splitlines()[-1]))


def loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name in modules]


def test_the_root_help_loads_no_command_module() -> None:
    modules = modules_after(["--help"])
    assert loaded(modules, NOT_FOR_HELP) == []
    assert [name for name in modules if name.startswith("tuneloop.cli.")] == [
        "tuneloop.cli.common",
        "tuneloop.cli.lazy",
        "tuneloop.cli.main",
    ]


def test_a_groups_help_loads_its_module_only() -> None:
    modules = modules_after(["runs", "--help"])
    assert loaded(modules, NOT_FOR_HELP) == []
    assert {name for name in modules if name.startswith("tuneloop.cli.")} == {
        "tuneloop.cli.charts",
        "tuneloop.cli.common",
        "tuneloop.cli.lazy",
        "tuneloop.cli.main",
        "tuneloop.cli.runs",
    }
