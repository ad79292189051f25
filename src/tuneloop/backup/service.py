"""``backup`` and ``restore`` of a deployment's state: app database, MLflow store, artifacts.

A restore reads and verifies the whole archive first, stages every part next to its target,
restores PostgreSQL in one transaction per database, and only then swaps the staged files
and folders into place; anything wrong before the swap leaves the workspace untouched.
Stop the API and the worker first: a restore replaces what they have open.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tuneloop import __version__
from tuneloop.backup.archive import Component, Kind, Manifest, describe, read_archive, write_archive
from tuneloop.backup.databases import (
    copy_sqlite,
    database_kind,
    dump_postgres,
    pack_folder,
    restore_postgres,
    sqlite_file,
    unpack_folder,
)
from tuneloop.config import Settings
from tuneloop.errors import InvalidInputError


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: Manifest


@dataclass(frozen=True)
class RestoreResult:
    restored: list[str]
    skipped: dict[str, str]


def _databases(settings: Settings) -> dict[str, str]:
    return {"app-db": settings.database_url, "mlflow-db": settings.mlflow_tracking_uri}


def _folders(settings: Settings) -> dict[str, Path]:
    """Local artifact folders: tuneloop's, and an embedded MLflow store's ``mlartifacts``."""
    folders = {"artifacts": settings.artifacts_dir}
    if database_kind(settings.mlflow_tracking_uri) == "sqlite":
        folders["mlartifacts"] = sqlite_file(settings.mlflow_tracking_uri).parent / "mlartifacts"
    return folders


def backup(settings: Settings, target: Path, *, created_at: datetime) -> BackupResult:
    """Write one archive of everything ``settings`` points at; returns its manifest."""
    manifest = Manifest(tuneloop_version=__version__, created_at=created_at.isoformat())
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".backup-") as staging:
        files: dict[str, Path] = {}
        for name, url in _databases(settings).items():
            kind = database_kind(url)
            if kind == "sqlite":
                source = sqlite_file(url)
                if not source.exists():
                    manifest.skipped[name] = f"{source} does not exist"
                    continue
                files[f"{name}.sqlite"] = Path(staging) / f"{name}.sqlite"
                copy_sqlite(source, files[f"{name}.sqlite"])
                manifest.components.append(describe(name, "sqlite", files[f"{name}.sqlite"]))
            elif kind == "postgresql":
                files[f"{name}.pgdump"] = Path(staging) / f"{name}.pgdump"
                dump_postgres(url, files[f"{name}.pgdump"])
                manifest.components.append(describe(name, "pgdump", files[f"{name}.pgdump"]))
            else:
                manifest.skipped[name] = "a tracking server owns this store: back up its database"
        for name, folder in _folders(settings).items():
            if not folder.is_dir():
                manifest.skipped[name] = f"{folder} does not exist"
                continue
            files[f"{name}.tar"] = Path(staging) / f"{name}.tar"
            pack_folder(folder, files[f"{name}.tar"])
            manifest.components.append(describe(name, "directory", files[f"{name}.tar"]))
        write_archive(target, manifest, files)
    return BackupResult(target, manifest)


@dataclass(frozen=True)
class _Step:
    component: Component
    kind: Kind
    target: Path | str  # a file or folder to replace, or a PostgreSQL URL


def _plan(settings: Settings, manifest: Manifest) -> list[_Step]:
    """Where each component goes; refuses (before any change) a part with no fitting target."""
    databases, folders = _databases(settings), _folders(settings)
    steps = []
    for component in manifest.components:
        if component.kind == "directory":
            if component.name not in folders:
                raise InvalidInputError(f"nowhere to restore {component.name} with these settings")
            steps.append(_Step(component, "directory", folders[component.name]))
            continue
        url = databases.get(component.name, "")
        wanted = {"sqlite": "sqlite", "pgdump": "postgresql"}[component.kind]
        if database_kind(url) != wanted:
            raise InvalidInputError(
                f"{component.name} was backed up from {wanted}; the target is not {wanted}"
            )
        steps.append(
            _Step(component, component.kind, sqlite_file(url) if wanted == "sqlite" else url)
        )
    return steps


def restore(settings: Settings, source: Path) -> RestoreResult:
    """Put an archive's state back; a corrupted or unfitting archive changes nothing."""
    settings.workspace.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.workspace, prefix=".restore-") as staging:
        manifest = read_archive(source, Path(staging))
        steps = _plan(settings, manifest)
        staged: list[tuple[Path, Path]] = []
        try:
            for step in steps:
                data = Path(staging) / step.component.file
                if step.kind == "directory":
                    assert isinstance(step.target, Path)
                    ready = step.target.with_name(step.target.name + ".restoring")
                    shutil.rmtree(ready, ignore_errors=True)
                    unpack_folder(data, ready)
                    staged.append((ready, step.target))
                elif step.kind == "sqlite":
                    assert isinstance(step.target, Path)
                    ready = step.target.with_name(step.target.name + ".restoring")
                    step.target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(data, ready)
                    staged.append((ready, step.target))
            for step in steps:  # transactional: a failure leaves each database as it was
                if step.kind == "pgdump":
                    restore_postgres(str(step.target), Path(staging) / step.component.file)
        except BaseException:
            for ready, _ in staged:
                shutil.rmtree(ready) if ready.is_dir() else ready.unlink(missing_ok=True)
            raise
        for ready, target in staged:
            _swap(ready, target)
    return RestoreResult([c.name for c in manifest.components], dict(manifest.skipped))


def _swap(ready: Path, target: Path) -> None:
    if ready.is_dir():
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        ready.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        return
    for suffix in ("-wal", "-shm"):  # a stale log would be replayed onto the restored file
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    ready.replace(target)
