"""The root's lazy table cannot drift from the commands it stands for: each summary is its
command's own first paragraph of help, ``tuneloop --help`` reads as the eagerly built root
(every module imported, every command registered) reads, and every group of the CLI's
modules is in the table. Resolving a command loads the real one; errors keep their exit
codes."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys

import pytest
import typer
from sqlalchemy.exc import OperationalError
from typer.core import TyperCommand, TyperGroup
from typer.testing import CliRunner

import tuneloop.cli
from tuneloop.cli import main
from tuneloop.cli.lazy import LazyCommand, Summary
from tuneloop.cli.main import COMMANDS, TuneloopGroup
from tuneloop.errors import NotFoundError

runner = CliRunner()


def eager_app() -> typer.Typer:
    """The root as it was built before commands loaded lazily: every command registered."""
    eager = typer.Typer(
        cls=TyperGroup,
        name="tuneloop",
        help=main.app.info.help,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
    )
    eager.registered_callback = main.app.registered_callback
    for entry in COMMANDS:
        entry.register(eager)
    return eager


def listed_help(command: TyperCommand | TyperGroup) -> str:
    """What a group's help shows of a command: the first paragraph (typer's rule)."""
    return inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0].strip()


@pytest.mark.parametrize("entry", COMMANDS, ids=lambda entry: entry.name)
def test_each_summary_is_the_first_paragraph_of_its_commands_help(entry: LazyCommand) -> None:
    command = entry.load(typer.main.get_group(main.app))
    assert not isinstance(command, Summary)
    assert (command.name, listed_help(command)) == (entry.name, entry.help)
    assert not command.hidden and not command.deprecated  # summaries are neither


@pytest.mark.parametrize("width", ["80", "200"])
def test_the_root_help_reads_as_the_eagerly_built_roots(width: str) -> None:
    lazy = runner.invoke(main.app, ["--help"], env={"COLUMNS": width})
    eager = runner.invoke(eager_app(), ["--help"], env={"COLUMNS": width})
    assert lazy.exit_code == eager.exit_code == 0
    assert lazy.output == eager.output
    assert "simulate-traffic" in lazy.output and "schedule" in lazy.output


def test_the_root_lists_the_commands_of_the_eagerly_built_root_in_its_order() -> None:
    lazy = typer.main.get_group(main.app)
    eager = typer.main.get_group(eager_app())
    context = typer.Context(lazy)
    assert lazy.list_commands(context) == eager.list_commands(context) == list(eager.commands)
    assert len(set(lazy.list_commands(context))) == len(COMMANDS)


def test_every_typer_of_the_cli_modules_is_in_the_table() -> None:
    """A group added to a module but not to the table would be missing from the CLI."""
    found = set()
    for module_info in pkgutil.iter_modules(tuneloop.cli.__path__):
        module = importlib.import_module(f"tuneloop.cli.{module_info.name}")
        found |= {
            f"{module.__name__}:{name}"
            for name, value in vars(module).items()
            if isinstance(value, typer.Typer) and value is not main.app
        }
    assert found
    assert found <= {entry.target for entry in COMMANDS}


def test_resolving_a_command_loads_the_real_one_and_listing_does_not() -> None:
    group = typer.main.get_group(main.app)
    context = typer.Context(group)
    with group._summaries():
        assert isinstance(group.get_command(context, "runs"), Summary)
    runs = group.get_command(context, "runs")
    assert isinstance(runs, TyperGroup)
    assert runs.list_commands(context) == ["list", "show", "advance", "abort"]
    assert group.get_command(context, "runs") is runs  # loaded once
    assert group.get_command(context, "no-such-command") is None


def test_a_group_and_a_command_run_through_the_lazy_root() -> None:
    runs_help = runner.invoke(main.app, ["runs", "--help"])
    assert runs_help.exit_code == 0 and "Pipeline runs: list, show, abort." in runs_help.output
    version = runner.invoke(main.app, ["--version"])
    assert (version.exit_code, version.output) == (0, "tuneloop 0.1.0\n")
    typo = runner.invoke(main.app, ["rnus"])
    assert typo.exit_code == 2 and "Did you mean 'runs'?" in typo.output
    assert runner.invoke(main.app, []).exit_code == 2  # no_args_is_help


def completions(words: str) -> str:
    """What zsh completion offers for ``words``, from a fresh ``tuneloop`` process."""
    env = {**os.environ, "_TUNELOOP_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": words}
    code = "import sys; sys.argv[0] = 'tuneloop'; from tuneloop.cli.main import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_completion_offers_command_names_and_then_a_groups_commands() -> None:
    names = completions("tuneloop ru")
    assert '"run":"Run the loop' in names and '"runs":"Pipeline runs' in names
    subcommands = completions("tuneloop runs ")
    assert all(f'"{name}":' in subcommands for name in ("list", "show", "advance", "abort"))


def failing_app(error: Exception) -> typer.Typer:
    """A root like tuneloop's (same group class) with one command that raises ``error``."""
    app = typer.Typer(cls=TuneloopGroup, pretty_exceptions_enable=False)

    @app.callback()
    def root() -> None:
        pass

    @app.command("fail")
    def fail() -> None:
        raise error

    return app


def test_errors_keep_their_exit_codes_and_words() -> None:
    missing = runner.invoke(failing_app(NotFoundError("run 'x' not found")), ["fail"])
    assert missing.exit_code == 4 and "run 'x' not found" in missing.output
    database = OperationalError("SELECT secret FROM t", {}, Exception("connection refused"))
    failed = runner.invoke(failing_app(database), ["fail"])
    assert failed.exit_code == 1
    assert "could not be reached" in failed.output and "SELECT" not in failed.output
    other = runner.invoke(failing_app(RuntimeError("a bug")), ["fail"])
    assert isinstance(other.exception, RuntimeError)  # not a database error: not swallowed
