"""Commands known by name and one-line help, their modules imported only when they run.

``tuneloop --help`` needs each command's name and first line of help, not its module: the
modules import their services, SQLAlchemy, the settings models and numpy, which cost most
of a second at every start (``bench/cli_start.py``). The root group lists stand-ins built
from a static table, and imports a command's module when click resolves that command (to
run it, show its own help, or complete its arguments).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class LazyCommand:
    """A command of the root group: its name, where it lives, and its line in ``--help``.

    ``target`` is ``"module:attribute"``: a ``typer.Typer`` (registered as a group, like
    ``app.add_typer``) or a function (registered as a command, like ``app.command``).
    ``help`` is the first paragraph of the command's help, as the root's help shows it;
    ``tests/unit/cli/test_cli_lazy.py`` checks it against the loaded command.
    """

    name: str
    target: str
    help: str

    def register(self, app: typer.Typer) -> None:
        """Import the target and add it to ``app`` under this name (the eager way)."""
        module, _, attribute = self.target.partition(":")
        found = getattr(importlib.import_module(module), attribute)
        if isinstance(found, typer.Typer):
            app.add_typer(found, name=self.name)
        else:
            app.command(self.name)(found)

    def load(self, group: TyperGroup) -> Any:  # typer vendors click; its Command is private
        """The real command, built by typer as if registered on ``group``'s app."""
        holder = typer.Typer(
            rich_markup_mode=group.rich_markup_mode,
            suggest_commands=group.suggest_commands,
            pretty_exceptions_enable=False,
        )
        self.register(holder)
        return typer.main.get_group(holder).commands[self.name]


class Summary(TyperCommand):
    """What the root's help and name completion show of a command not loaded yet."""

    def __init__(self, entry: LazyCommand) -> None:
        super().__init__(name=entry.name, help=entry.help)
        self.entry = entry


class LazyGroup(TyperGroup):
    """A group whose commands, named in ``lazy_commands``, load when resolved.

    ``get_command`` keeps click's meaning (the real command: its module is imported then);
    only listing them, for the group's own help or to complete a command name, uses the
    summaries.
    """

    lazy_commands: ClassVar[Sequence[LazyCommand]] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        # Summaries stand in self.commands, in the table's order: click's listing, typo
        # suggestions ("Did you mean") and add_command work on that mapping unchanged.
        for entry in self.lazy_commands:
            self.commands.setdefault(entry.name, Summary(entry))
        self._listing = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if isinstance(command, Summary) and not self._listing:
            command = self.commands[cmd_name] = command.entry.load(self)
        return command

    @contextmanager
    def _summaries(self) -> Iterator[None]:
        self._listing = True
        try:
            yield
        finally:
            self._listing = False

    def format_help(self, ctx: Any, formatter: Any) -> None:
        with self._summaries():
            super().format_help(ctx, formatter)

    def shell_complete(self, ctx: Any, incomplete: str) -> Any:
        with self._summaries():
            return super().shell_complete(ctx, incomplete)
