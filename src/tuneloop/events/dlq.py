"""Dead letters you can act on: counts and samples by category, replay, purge.

Replay sends each dead letter's event back through the edge's validation (``accept_events``,
as ``POST /v1/events`` would) and into the stream; a letter whose event is refused again
stays where it is, with nothing appended. Purge removes letters for good.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from tuneloop.domain.event_stream import Category, DeadLetter, EventStream
from tuneloop.events.accept import accept_events


@dataclass
class Replayed:
    """What a replay did: letters taken, events appended again, already stored, still refused."""

    letters: int = 0
    appended: int = 0
    duplicates: int = 0
    refused: list[tuple[DeadLetter, str]] = field(default_factory=list)


def replay(
    engine: Engine, stream: EventStream, category: Category, *, limit: int = 1000
) -> Replayed:
    """Re-validate and re-append up to ``limit`` dead letters of ``category``."""
    done = Replayed()
    letters = stream.dead_letters(category, limit=limit)
    removable: list[str] = []
    for letter in letters:
        done.letters += 1
        report = accept_events(engine, stream, letter.tenant_id, [letter.event])
        if report.problems:
            reason = "; ".join(f"{p.field}: {p.reason}" for p in report.problems)
            done.refused.append((letter, reason))
            continue
        done.appended += report.accepted
        done.duplicates += report.duplicates
        removable.append(letter.id)
    if removable:
        stream.remove_dead_letters(category, removable)
    return done


def purge(stream: EventStream, category: Category) -> int:
    """Remove every dead letter of ``category``; how many there were."""
    return stream.remove_dead_letters(category)
