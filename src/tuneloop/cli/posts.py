"""``tuneloop posts import`` and ``tuneloop seed``: getting posts into the store."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tuneloop.app.posts import Post, count_posts, list_posts, write_posts
from tuneloop.cli.common import DEFAULT, TenantOption, console, engine, progress_bar
from tuneloop.errors import InvalidInputError
from tuneloop.posts.importer import ImportReport, read_posts
from tuneloop.posts.schema import PostIn
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts

app = typer.Typer(help="Posts: import your own, with per-line error reports.", no_args_is_help=True)


@app.command("import")
def import_posts(
    file: Annotated[Path, typer.Argument(help="CSV (with a header) or JSONL file of posts.")],
    tenant: TenantOption = DEFAULT,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or jsonl (default: by suffix).")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Exit non-zero when any row was rejected.")] = True,
) -> None:
    """Import posts from FILE, idempotent on post id; bad rows are listed, good rows kept.

    Columns: id, hook, body, ts (required); persona_id, engagement_rate (0..1),
    impressions, engagements, tokens_used, model_id, source_model, source_version,
    generation_id (optional: which model version wrote the post).
    """
    report = ImportReport()
    written = write_posts(engine(), tenant, read_posts(file, report, fmt))
    console.print(
        f"read {report.read} rows: [green]{report.accepted} accepted[/] "
        f"({written} written), [red]{report.rejected} rejected[/]"
    )
    if report.problems:
        table = Table("where", "problem", title="rejected rows", title_justify="left")
        for problem in report.problems[:100]:
            table.add_row(problem.where, problem.reason)
        console.print(table)
        if len(report.problems) > 100:
            console.print(f"... and {len(report.problems) - 100} more")
        if strict:
            raise InvalidInputError(
                f"{report.rejected} of {report.read} rows rejected; "
                f"the {report.accepted} good rows were kept"
            )


@app.command("list")
def list_command(
    tenant: TenantOption = DEFAULT,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """The newest posts, with the model version that wrote each (- : unknown origin)."""
    rows = list_posts(engine(), tenant, limit=limit)
    if as_json:
        typer.echo(json.dumps([_post_json(row) for row in rows], indent=2, default=str))
        return
    table = Table("id", "ts", "engagement", "source model", "version", "hook")
    for row in rows:
        table.add_row(
            row.id,
            row.ts.strftime("%Y-%m-%d %H:%M"),
            "-" if row.engagement_rate is None else f"{row.engagement_rate:.4f}",
            row.source_model or "-",
            row.source_version or "-",
            row.hook[:48],
        )
    console.print(table)


def _post_json(row: Post) -> dict[str, object]:
    fields = ("id", "persona_id", "engagement_rate", "model_id", "source_model")
    more = ("source_version", "generation_id", "ts", "hook")
    return {name: getattr(row, name) for name in (*fields, *more)}


def seed(
    posts: Annotated[
        int, typer.Option("--posts", "-n", min=1, help="How many posts to generate.")
    ] = 2000,
    tenant: TenantOption = DEFAULT,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same posts).")] = 7,
    weeks: Annotated[int, typer.Option(min=1, help="Spread timestamps over this many weeks.")] = 4,
) -> None:
    """Generate realistic synthetic posts (personas, hooks, long-tailed engagement)."""
    spec = SyntheticSpec(posts=posts, seed=seed, weeks=weeks)
    store = engine()
    generated = (PostIn.model_construct(**row) for row in generate_posts(spec))
    with progress_bar("seeding posts", posts) as bar:
        task = bar.task_ids[0]
        while batch := list(islice(generated, 5000)):
            write_posts(store, tenant, batch)
            bar.advance(task, len(batch))
    console.print(f"tenant [bold]{tenant}[/] now has {count_posts(store, tenant)} posts")
