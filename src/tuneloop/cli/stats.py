"""``tuneloop stats analyze``: the statistics engine on a JSON file or stdin, JSON out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tuneloop.errors import InvalidInputError
from tuneloop.experiments.stats.analysis import analyze as run_analysis
from tuneloop.experiments.stats.analysis import parse_request

app = typer.Typer(help="Statistics: analyze an A/B test from per-arm sums.", no_args_is_help=True)


@app.command("analyze")
def analyze(
    file: Annotated[str, typer.Argument(help="Analysis request JSON file, or - for stdin.")],
) -> None:
    """Compare each arm with the first (the control) and check the traffic split.

    Input: {"metric": "mean"|"proportion"|"ratio", "difference": "relative"|"absolute",
    "alpha", "alternative": "two-sided"|"greater"|"less", "method": "sequential"|"fixed",
    "sequential_tuning", "weights", "engine": "frequentist"|"bayesian", "prior": {"mean",
    "variance", "proper"}, "inverse", "correction": "none"|"holm-bonferroni"|
    "benjamini-hochberg", "arms": [{"name", "n", "sum", "sum_squares"} (+ "pre_sum",
    "pre_sum_squares", "post_pre_sum_products" for CUPED) or {"name", "n", "successes"} or
    {"name", "n", "numerator_sum", ... } (ratio)]}. Examples: docs/examples/stats/;
    reference: docs/statistics.md.
    """
    typer.echo(run_analysis(parse_request(_read(file))).model_dump_json(indent=2))


def _read(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    try:
        return Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read {file}: {exc}") from exc
