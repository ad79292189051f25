"""The image's Dockerfile: hadolint-clean, non-root, healthchecked, labelled with the version.

No container engine runs here: the image is linted and read, not built."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conftest import DEPLOY, REPO
from tuneloop import __version__

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"


def lint(hadolint: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hadolint, "--no-color", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def test_hadolint_passes(hadolint: str) -> None:
    result = lint(hadolint, DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_regression(hadolint: str, tmp_path: Path) -> None:
    broken = DOCKERFILE.read_text(encoding="utf-8").replace("--no-install-recommends ", "")
    (tmp_path / "Dockerfile").write_text(broken, encoding="utf-8")
    result = lint(hadolint, tmp_path / "Dockerfile")
    assert result.returncode != 0 and "DL3015" in result.stdout


def test_the_image_runs_tuneloop_as_non_root_with_a_healthcheck() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert len(re.findall(r"^FROM ", text, re.M)) == 2  # multi-stage
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "/health/live" in text.split("HEALTHCHECK", 1)[1]
    assert re.search(rf"^ARG VERSION={re.escape(__version__)}$", text, re.M)
    assert 'org.opencontainers.image.version="${VERSION}"' in text
    assert 'ENTRYPOINT ["tuneloop"]' in text and 'CMD ["serve"]' in text
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in text
    assert '".[train]"' in text and "dev" not in re.findall(r'"\.\[(.*?)\]"', text)[0]


def test_dockerignore_keeps_the_context_to_the_package() -> None:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert lines[lines.index("*")] == "*"
    copied = set(
        re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    )
    needed = {name for line in copied for name in line.split()}
    assert needed == {"pyproject.toml", "constraints.txt", "README.md", "src"}
    assert {f"!{name}" if name != "src" else "!src/" for name in needed} <= set(lines)
