"""The root command: names every command (imported when it runs) and maps errors to exit codes."""

from __future__ import annotations

import logging
import sys
from typing import Any

import typer

from tuneloop import __version__
from tuneloop.cli.common import err_console
from tuneloop.cli.lazy import LazyCommand, LazyGroup
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

# Every command, in the order `tuneloop --help` lists them (commands, then groups), with
# the first paragraph of its help: modules are imported only when their command runs
# (tests/unit/cli/test_cli_lazy.py checks names and helps against the loaded commands).
COMMANDS = (
    LazyCommand(
        "seed",
        "tuneloop.cli.posts:seed",
        "Generate realistic synthetic posts (personas, hooks, long-tailed engagement).",
    ),
    LazyCommand(
        "collect",
        "tuneloop.cli.collect:collect",
        "Collect the best posts and build a validated, versioned dataset.",
    ),
    LazyCommand(
        "simulate-traffic",
        "tuneloop.cli.experiments:simulate_traffic",
        "Simulate exposures, generations and outcomes for a running experiment (demos, tests).",
    ),
    LazyCommand(
        "serve",
        "tuneloop.cli.serve:serve",
        # The docstring's line break, kept: rich markup mode shows a paragraph's breaks.
        "Serve the REST API and the dashboard (/ui): migrations run at start; /docs has the\n"
        "OpenAPI documentation.",
    ),
    LazyCommand(
        "demo",
        "tuneloop.cli.demo:demo",
        "The whole loop: train, A/B test, decide, roll out, promote; then a rollback.",
    ),
    LazyCommand(
        "run",
        "tuneloop.cli.runs:run",
        "Run the loop, or continue the interrupted, waiting (or failed) run where it stands.",
    ),
    LazyCommand(
        "deploy",
        "tuneloop.cli.deploy:deploy",
        "Deploy a model version after its safety checks (evaluation, baseline, reachable).",
    ),
    LazyCommand(
        "rollback",
        "tuneloop.cli.deploy:rollback",
        "Send all traffic back to the previous model and restore its champion alias.",
    ),
    LazyCommand(
        "backup",
        "tuneloop.cli.backup:backup",
        "Back up the app database, the MLflow store and the artifacts into one archive.",
    ),
    LazyCommand(
        "restore",
        "tuneloop.cli.backup:restore",
        "Restore an archive over the current state (stop the API and the worker first).",
    ),
    LazyCommand(
        "worker",
        "tuneloop.cli.worker:worker",
        "Keep the loop moving: start runs on schedule and triggers, advance runs, tick rollouts.",
    ),
    LazyCommand("db", "tuneloop.cli.db:app", "Database schema: upgrade and inspect migrations."),
    LazyCommand(
        "posts", "tuneloop.cli.posts:app", "Posts: import your own, with per-line error reports."
    ),
    LazyCommand(
        "datasets", "tuneloop.cli.collect:datasets_app", "Dataset versions: list and inspect."
    ),
    LazyCommand(
        "experiments",
        "tuneloop.cli.experiments:app",
        "A/B tests of a candidate model against the baseline.",
    ),
    LazyCommand(
        "holdout",
        "tuneloop.cli.holdout:app",
        "The permanent holdout (experiments.holdout_share): the cumulative effect of every "
        "promotion.",
    ),
    LazyCommand("keys", "tuneloop.cli.keys:app", "API keys: create, list, revoke; mint JWTs."),
    LazyCommand(
        "stats", "tuneloop.cli.stats:app", "Statistics: analyze an A/B test from per-arm sums."
    ),
    LazyCommand(
        "config", "tuneloop.cli.config_cmd:app", "Configuration: show the effective settings."
    ),
    LazyCommand("runs", "tuneloop.cli.runs:app", "Pipeline runs: list, show, abort."),
    LazyCommand(
        "models", "tuneloop.cli.models:app", "Model versions: list, and promote the first champion."
    ),
    LazyCommand(
        "deployments", "tuneloop.cli.deploy:deployments_app", "Deployments: list, show, promote."
    ),
    LazyCommand(
        "rollout", "tuneloop.cli.deploy:rollout_app", "Rollout ticks (what the scheduler runs)."
    ),
    LazyCommand("consume", "tuneloop.cli.events:consume_app", "Run stream consumers."),
    LazyCommand(
        "dlq", "tuneloop.cli.events:dlq_app", "Dead-lettered events: inspect, replay, purge."
    ),
    LazyCommand(
        "schedule",
        "tuneloop.cli.worker:schedule_app",
        "The schedule and the triggers of each tenant.",
    ),
)


class TuneloopGroup(LazyGroup):
    """The root group: turns a TuneloopError into a message and an exit code, never a traceback."""

    lazy_commands = COMMANDS

    def invoke(self, ctx: Any) -> Any:  # typer vendors click; its Context type is private
        try:
            return super().invoke(ctx)
        except TuneloopError as error:
            # soft_wrap: a message is never broken across lines, whatever the terminal width
            err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            for problem in getattr(error, "problems", [])[:50]:
                err_console.print(f"  - {problem}", highlight=False, soft_wrap=True)
            ctx.exit(exit_code_for(error))
        except Exception as error:
            if not _is_database_error(error):
                raise
            # never raw SQL on a terminal: words, detail logged
            from tuneloop.app.errors import in_words

            logging.getLogger("tuneloop.cli").debug("database error", exc_info=error)
            err_console.print(f"[bold red]error:[/] {in_words(error)}", highlight=False)
            ctx.exit(1)


def _is_database_error(error: Exception) -> bool:
    """A SQLAlchemy error, checked without importing SQLAlchemy (~0.15 s at every start):
    only a command that imported it can have raised one."""
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    return sqlalchemy_exc is not None and isinstance(error, sqlalchemy_exc.SQLAlchemyError)


app = typer.Typer(
    cls=TuneloopGroup,
    name="tuneloop",
    help="Close the loop from engagement data to a better model: collect the posts that "
    "earned the most engagement, build a dataset, fine-tune, A/B test, roll out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


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
