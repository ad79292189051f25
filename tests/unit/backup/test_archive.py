"""The backup archive: written whole or not at all, read back only when every check holds."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from tuneloop.backup.archive import MANIFEST, Manifest, describe, read_archive, write_archive
from tuneloop.errors import InvalidInputError


def make(tmp_path: Path) -> Path:
    data = tmp_path / "app-db.sqlite"
    data.write_bytes(b"database bytes")
    manifest = Manifest(tuneloop_version="0.1.0", created_at="2026-01-05T12:00:00+00:00")
    manifest.components.append(describe("app-db", "sqlite", data))
    manifest.skipped["mlflow-db"] = "a tracking server owns this store"
    archive = tmp_path / "backup.tar.gz"
    write_archive(archive, manifest, {"app-db.sqlite": data})
    return archive


def tar_with(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_written_archive_reads_back(tmp_path: Path) -> None:
    archive = make(tmp_path)
    assert not list(tmp_path.glob("*.partial"))
    (tmp_path / "out").mkdir()
    manifest = read_archive(archive, tmp_path / "out")
    assert [c.name for c in manifest.components] == ["app-db"]
    assert manifest.skipped == {"mlflow-db": "a tracking server owns this store"}
    assert (tmp_path / "out" / "app-db.sqlite").read_bytes() == b"database bytes"


def members_of(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"app-db.sqlite": b"tampered"}, "fails its checksum"),
        ({"../evil": b"x"}, "unexpected entry"),
        ({"extra.bin": b"x"}, "do not match its manifest"),
        ({MANIFEST: b"{not json"}, "manifest is unreadable"),
        ({MANIFEST: json.dumps({"format": 99}).encode()}, "unknown backup format"),
    ],
)
def test_a_damaged_archive_is_refused(
    tmp_path: Path, change: dict[str, bytes], message: str
) -> None:
    members = members_of(make(tmp_path)) | change
    bad = tar_with(tmp_path / "bad.tar.gz", members)
    (tmp_path / "out").mkdir()
    with pytest.raises(InvalidInputError, match=message):
        read_archive(bad, tmp_path / "out")


def test_an_archive_without_a_manifest_is_refused(tmp_path: Path) -> None:
    bad = tar_with(tmp_path / "bad.tar.gz", {"app-db.sqlite": b"x"})
    (tmp_path / "out").mkdir()
    with pytest.raises(InvalidInputError, match="no manifest"):
        read_archive(bad, tmp_path / "out")
