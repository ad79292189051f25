"""The root command: registers the groups and maps errors to exit codes in one place."""

from __future__ import annotations

import logging
from typing import Any

import typer
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup

from tuneloop import __version__
from tuneloop.app.errors import in_words
from tuneloop.cli import backup as backup_cli
from tuneloop.cli import collect as collect_cli
from tuneloop.cli import config_cmd as config_cli
from tuneloop.cli import db as db_cli
from tuneloop.cli import demo as demo_cli
from tuneloop.cli import deploy as deploy_cli
from tuneloop.cli import events as events_cli
from tuneloop.cli import experiments as experiments_cli
from tuneloop.cli import holdout as holdout_cli
from tuneloop.cli import keys as keys_cli
from tuneloop.cli import models as models_cli
from tuneloop.cli import posts as posts_cli
from tuneloop.cli import runs as runs_cli
from tuneloop.cli import serve as serve_cli
from tuneloop.cli import stats as stats_cli
from tuneloop.cli import worker as worker_cli
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

    def invoke(self, ctx: Any) -> Any:  # typer vendors click; its Context type is private
        try:
            return super().invoke(ctx)
        except TuneloopError as error:
            # soft_wrap: a message is never broken across lines, whatever the terminal width
            err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            for problem in getattr(error, "problems", [])[:50]:
                err_console.print(f"  - {problem}", highlight=False, soft_wrap=True)
            ctx.exit(exit_code_for(error))
        except SQLAlchemyError as error:  # never raw SQL on a terminal: words, detail logged
            logging.getLogger("tuneloop.cli").debug("database error", exc_info=error)
            err_console.print(f"[bold red]error:[/] {in_words(error)}", highlight=False)
            ctx.exit(1)


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
app.add_typer(experiments_cli.app, name="experiments")
app.add_typer(holdout_cli.app, name="holdout")
app.command("simulate-traffic")(experiments_cli.simulate_traffic)
app.add_typer(keys_cli.app, name="keys")
app.command("serve")(serve_cli.serve)
app.add_typer(stats_cli.app, name="stats")
app.add_typer(config_cli.app, name="config")
app.command("demo")(demo_cli.demo)
app.command("run")(runs_cli.run)
app.add_typer(runs_cli.app, name="runs")
app.add_typer(models_cli.app, name="models")
app.command("deploy")(deploy_cli.deploy)
app.command("rollback")(deploy_cli.rollback)
app.add_typer(deploy_cli.deployments_app, name="deployments")
app.add_typer(deploy_cli.rollout_app, name="rollout")
app.command("backup")(backup_cli.backup)
app.command("restore")(backup_cli.restore)
app.add_typer(events_cli.consume_app, name="consume")
app.add_typer(events_cli.dlq_app, name="dlq")
app.command("worker")(worker_cli.worker)
app.add_typer(worker_cli.schedule_app, name="schedule")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tuneloop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        # Eager: handled while parsing, so it works without a command ("Missing command").
        is_eager=True,
        callback=_print_version,
    ),
) -> None:
    _console_logging()


def _console_logging() -> None:
    """Warnings and errors to stderr through Rich, once (``serve`` sets up JSON logs itself)."""
    import logging

    from rich.logging import RichHandler

    root = logging.getLogger()
    if not any(isinstance(handler, RichHandler) for handler in root.handlers):
        handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=False)
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)


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
