"""``tuneloop consume events`` and ``tuneloop dlq list|show|replay|purge``."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table

from tuneloop.cli.common import console, engine, settings
from tuneloop.domain.event_stream import Category, EventStream

consume_app = typer.Typer(help="Run stream consumers.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead-lettered events: inspect, replay, purge.", no_args_is_help=True)

CategoryArg = Annotated[Category, typer.Argument(help="validation, unknown_reference, processing")]


@contextmanager
def opened_stream() -> Iterator[EventStream]:
    from tuneloop.events.factory import redis_for, stream_for

    config = settings()
    client = redis_for(config)
    stream = stream_for(config, engine(), client)
    try:
        yield stream
    finally:
        stream.close()
        if client is not None:
            client.close()


@consume_app.command("events")
def consume_events(
    drain: Annotated[
        bool, typer.Option("--drain", help="Stop when nothing waits instead of running on.")
    ] = False,
) -> None:
    """Write the event stream's entries to the events table until stopped (Ctrl-C, SIGTERM)."""
    from tuneloop.events.factory import consumer_for
    from tuneloop.events.report_cache import ReportCache

    config = settings()
    with opened_stream() as stream:
        # With Redis the API's cached reports are shared: invalidate them from here too.
        client = getattr(stream, "client", None)
        hook = ReportCache(redis=client).invalidate_tenant if client is not None else None
        consumer = consumer_for(config, engine(), stream, on_written=hook)
        if drain:
            done = consumer.drain(timeout=float("inf"))
        else:
            stop = threading.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
            console.print(f"consuming {stream.name} as {consumer.name}")
            consumer.run(stop)
            done = consumer.progress
    console.print(
        f"read {done.read}, written {done.written}, duplicates {done.duplicates}, "
        f"held for redelivery {done.retried}, dead-lettered {done.dead_lettered}"
    )


@dlq_app.command("list")
def list_dead_letters(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Dead letters per category, and the consumer's lag."""
    with opened_stream() as stream:
        counts = stream.dead_letter_counts()
        lag = stream.lag()
    if as_json:
        found = {c.value: n for c, n in counts.items()}
        typer.echo(json.dumps({"dead_letters": found, "lag": lag.to_json()}))
        return
    table = Table("category", "dead letters")
    for category, count in counts.items():
        table.add_row(category.value, str(count))
    console.print(table)
    age = lag.oldest_age_seconds
    console.print(
        f"waiting in {stream.name}: {lag.pending}"
        + ("" if age is None else f" (oldest {age:.1f} s)")
    )


@dlq_app.command("show")
def show(
    category: CategoryArg,
    limit: Annotated[int, typer.Option(min=1, help="How many, oldest first.")] = 10,
) -> None:
    """Samples of one category: entry, tenant, attempts, error, event (JSON lines)."""
    with opened_stream() as stream:
        letters = stream.dead_letters(category, limit=limit)
    for letter in letters:
        typer.echo(json.dumps(letter.to_json(), default=str))


@dlq_app.command("replay")
def replay(
    category: CategoryArg,
    limit: Annotated[int, typer.Option(min=1, help="Most letters to replay.")] = 1000,
) -> None:
    """Send a category's letters back through validation into the stream (after a fix)."""
    from tuneloop.events.dlq import replay as replay_letters

    with opened_stream() as stream:
        done = replay_letters(engine(), stream, category, limit=limit)
    console.print(
        f"replayed {done.letters}: appended {done.appended}, already stored "
        f"{done.duplicates}, refused again {len(done.refused)} (kept)"
    )
    for letter, reason in done.refused[:10]:
        console.print(f"  {letter.id}: {reason}", highlight=False)


@dlq_app.command("purge")
def purge(
    category: CategoryArg,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete every letter of a category for good."""
    from tuneloop.events.dlq import purge as purge_letters

    if not yes:
        typer.confirm(f"delete every {category.value} dead letter?", abort=True)
    with opened_stream() as stream:
        removed = purge_letters(stream, category)
    console.print(f"purged {removed} {category.value} dead letter(s)")
