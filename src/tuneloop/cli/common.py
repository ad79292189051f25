"""What every command shares: the console, settings, options, progress bars."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import Engine

from tuneloop.config import DEFAULT_TENANT, Settings, get_settings
from tuneloop.wiring import Container, build_container, engine_for

console = Console()
err_console = Console(stderr=True)

TenantOption = Annotated[
    str, typer.Option("--tenant", "-t", envvar="TUNELOOP_TENANT", help="Tenant to act for.")
]
DEFAULT = DEFAULT_TENANT


def settings() -> Settings:
    return get_settings()


def engine() -> Engine:
    return engine_for(get_settings())


def container() -> Container:
    """The composition root for this command (settings from the environment, system clock)."""
    return build_container(get_settings())


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Progress]:
    """A Rich progress bar (quiet when output is not a terminal)."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as progress:
        progress.add_task(description, total=total)
        yield progress
