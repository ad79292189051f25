"""What every command shares: the console, settings, options, progress bars.

Imported by ``tuneloop --help`` and every group's help, so it imports neither the settings
models nor SQLAlchemy nor the wiring (~0.6 s together): the functions below do, when a
command first asks for settings, an engine or a container.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

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

from tuneloop.domain.tenants import DEFAULT_TENANT

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from tuneloop.config import Settings
    from tuneloop.wiring import Container

console = Console()
err_console = Console(stderr=True)

TenantOption = Annotated[
    str, typer.Option("--tenant", "-t", envvar="TUNELOOP_TENANT", help="Tenant to act for.")
]
DEFAULT = DEFAULT_TENANT


def settings() -> Settings:
    from tuneloop.config import get_settings

    return get_settings()


def engine() -> Engine:
    from tuneloop.wiring import engine_for

    return engine_for(settings())


def container() -> Container:
    """The composition root for this command (settings from the environment, system clock)."""
    from tuneloop.wiring import build_container

    return build_container(settings())


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
