"""The root command: registers the groups and maps errors to exit codes in one place."""

from __future__ import annotations

from typing import Any

import click
import typer
from typer.core import TyperGroup

from tuneloop import __version__
from tuneloop.cli import collect as collect_cli
from tuneloop.cli import db as db_cli
from tuneloop.cli import posts as posts_cli
from tuneloop.cli.common import err_console
from tuneloop.errors import (
    ConfigurationError,
    ConflictError,
    ExternalServiceError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    TrainingError,
    TuneloopError,
)

class TuneloopGroup(TyperGroup):
    """The root group: turns a TuneloopError into a message and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TuneloopError as error:
            err_console.print(f"[bold red]error:[/] {error}", highlight=False)
            for problem in getattr(error, "problems", [])[:50]:
                err_console.print(f"  - {problem}", highlight=False)
            ctx.exit(exit_code_for(error))


app = typer.Typer(
    cls=TuneloopGroup,
    name="tuneloop",
    help="Close the loop from engagement data to a better model: collect the posts that "
    "earned the most engagement, build a dataset, fine-tune, A/B test, roll out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.add_typer(db_cli.app, name="db")
app.add_typer(posts_cli.app, name="posts")
app.command("seed")(posts_cli.seed)
app.command("collect")(collect_cli.collect)
app.add_typer(collect_cli.datasets_app, name="datasets")


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


# One table from error kind to exit code (the HTTP table lives in the app factory).
EXIT_CODES: dict[type[TuneloopError], int] = {
    InvalidInputError: 2,
    ConfigurationError: 3,
    NotFoundError: 4,
    ConflictError: 5,
    InvalidStateError: 5,
    ExternalServiceError: 6,
    TrainingError: 7,
}


def exit_code_for(error: TuneloopError) -> int:
    for kind, code in EXIT_CODES.items():
        if isinstance(error, kind):
            return code
    return 1


def main() -> None:
    app()


if __name__ == "__main__":
    main()
