"""Consistent copies of the databases and folders a backup holds, and putting them back.

SQLite through its online backup API (a consistent copy while others read and write);
PostgreSQL through ``pg_dump``/``pg_restore`` (custom format, restored in one transaction);
folders as a plain tar.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import tarfile
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs

from sqlalchemy.engine import make_url

from tuneloop.errors import ConfigurationError, ExternalServiceError

DatabaseKind = Literal["sqlite", "postgresql"]


def database_kind(url: str) -> DatabaseKind | None:
    """``sqlite`` or ``postgresql`` for a SQLAlchemy URL, None for anything else (http...)."""
    if url.startswith("sqlite:"):
        return "sqlite"
    if url.startswith(("postgresql:", "postgresql+", "postgres:")):
        return "postgresql"
    return None


def sqlite_file(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ConfigurationError(f"cannot back up the in-memory database {url!r}")
    return Path(database)


def copy_sqlite(source: Path, target: Path) -> None:
    """An online, consistent copy of ``source`` (others may keep using it meanwhile)."""
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _libpq(url: str) -> tuple[str, list[str]]:
    """A libpq URI for the pg tools, and ``--schema`` arguments when the URL pins a
    search_path (then only that schema is tuneloop's)."""
    parsed = make_url(url).set(drivername="postgresql")
    options = parse_qs(f"o={parsed.query.get('options', '')}")["o"][0] if parsed.query else ""
    schemas = [part.split("=", 1)[1] for part in options.split() if "search_path=" in part]
    return parsed.render_as_string(hide_password=False), [f"--schema={s}" for s in schemas]


def _run(tool: str, *args: str) -> None:
    path = shutil.which(tool)
    if path is None:
        raise ConfigurationError(f"{tool} is not installed (the PostgreSQL client tools)")
    result = subprocess.run([path, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ExternalServiceError(tool, result.stderr.strip()[-2000:] or "failed")


def dump_postgres(url: str, target: Path) -> None:
    uri, schemas = _libpq(url)
    _run(
        "pg_dump", "--format=custom", "--no-owner", f"--file={target}", *schemas, f"--dbname={uri}"
    )


def restore_postgres(url: str, dump: Path) -> None:
    """Replace the database's objects by the dump's, all or nothing (one transaction)."""
    uri, _ = _libpq(url)
    _run(
        "pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
        "--exit-on-error", f"--dbname={uri}", str(dump),
    )  # fmt: skip


def pack_folder(folder: Path, target: Path) -> None:
    with tarfile.open(target, "w") as tar:
        tar.add(folder, arcname=".")


def unpack_folder(archive: Path, target: Path) -> None:
    target.mkdir(parents=True)
    with tarfile.open(archive, "r") as tar:
        tar.extractall(target, filter="data")
