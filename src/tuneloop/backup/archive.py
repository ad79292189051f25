"""The backup archive: a tar of component files plus ``manifest.json`` with their checksums.

Reading verifies everything before anything is used: a missing, extra, unsafe or altered
member makes the whole archive refused (``InvalidInputError``), so a restore never starts
from a corrupted archive.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tuneloop.errors import InvalidInputError

FORMAT = 1
MANIFEST = "manifest.json"
Kind = Literal["sqlite", "pgdump", "directory"]


@dataclass(frozen=True)
class Component:
    """One thing backed up: ``app-db``, ``mlflow-db``, ``artifacts``, ``mlartifacts``."""

    name: str
    kind: Kind
    file: str
    sha256: str
    bytes: int


@dataclass
class Manifest:
    tuneloop_version: str
    created_at: str
    components: list[Component] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why (e.g. a server's store)
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            data: dict[str, Any] = json.loads(text)
            if data.get("format") != FORMAT:
                raise InvalidInputError(f"unknown backup format {data.get('format')!r}")
            components = [Component(**item) for item in data["components"]]
            return cls(
                tuneloop_version=data["tuneloop_version"],
                created_at=data["created_at"],
                components=components,
                skipped=dict(data.get("skipped", {})),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"backup manifest is unreadable: {exc}") from exc


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe(name: str, kind: Kind, path: Path) -> Component:
    return Component(name, kind, path.name, sha256_of(path), path.stat().st_size)


def write_archive(target: Path, manifest: Manifest, files: dict[str, Path]) -> None:
    """Write ``target`` (gzip tar) atomically: a partial archive never has the final name."""
    partial = target.with_name(target.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        data = manifest.to_json().encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for name, path in files.items():
            tar.add(path, arcname=name, recursive=False)
    partial.replace(target)


def read_archive(source: Path, into: Path) -> Manifest:
    """Extract ``source`` into the empty folder ``into`` and verify it; the manifest."""
    try:
        with tarfile.open(source, "r:*") as tar:
            members = tar.getmembers()
            names = [member.name for member in members]
            for member in members:
                if not member.isfile() or "/" in member.name or member.name.startswith("."):
                    raise InvalidInputError(f"backup holds an unexpected entry {member.name!r}")
            if MANIFEST not in names:
                raise InvalidInputError("backup has no manifest.json")
            tar.extractall(into, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidInputError(f"backup archive is unreadable: {exc}") from exc
    manifest = Manifest.from_json((into / MANIFEST).read_text(encoding="utf-8"))
    expected = {component.file for component in manifest.components}
    if set(names) - {MANIFEST} != expected:
        raise InvalidInputError("backup members do not match its manifest")
    for component in manifest.components:
        actual = sha256_of(into / component.file)
        if actual != component.sha256:
            raise InvalidInputError(f"backup component {component.name} fails its checksum")
    return manifest
