"""The event stream port: append, read with delivery counts, acknowledge, dead-letter, lag.

Two adapters keep the same contract (``events/redis_stream.py``: Redis Streams with a
consumer group; ``store/event_stream.py``: an append-only table in the app database):

- ``append`` returns once the entries are durable (as durable as the backend is configured);
- ``read`` hands a consumer new entries and entries another consumer left unacknowledged
  for longer than the claim idle time, each with how many times it has been delivered;
- ``ack`` is called only after the entries' events are committed to the events table:
  an entry read but never acknowledged (the consumer died) is delivered again, and the
  events table's idempotency key makes the second write a no-op;
- ``dead_letter`` moves an entry to its category's dead-letter queue and acknowledges it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import orjson


class Category(StrEnum):
    """Why an entry was dead-lettered (one queue per category)."""

    VALIDATION = "validation"  # the event itself is malformed: retrying cannot help
    UNKNOWN_REFERENCE = "unknown_reference"  # names an experiment/arm/generation not found
    PROCESSING = "processing"  # writing it failed (database error) N times


@dataclass(frozen=True)
class Entry:
    """One stream entry: a tenant's event (as the client sent it) and its delivery count."""

    id: str
    tenant_id: str
    event: Any
    deliveries: int


@dataclass(frozen=True)
class DeadLetter:
    """An entry that was given up on: where it came from, why, after how many deliveries."""

    id: str
    category: Category
    source: str  # the stream it was read from
    entry_id: str
    tenant_id: str
    event: Any
    error: str
    attempts: int
    at: float  # epoch seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category.value,
            "source": self.source,
            "entry_id": self.entry_id,
            "tenant_id": self.tenant_id,
            "event": self.event,
            "error": self.error,
            "attempts": self.attempts,
            "at": self.at,
        }


@dataclass(frozen=True)
class Lag:
    """How far the consumers are behind: entries not yet acknowledged, and the oldest's age."""

    pending: int
    oldest_age_seconds: float | None

    def to_json(self) -> dict[str, Any]:
        age = self.oldest_age_seconds
        return {
            "pending": self.pending,
            "oldest_age_seconds": None if age is None else round(age, 3),
        }


class StreamGone(Exception):  # noqa: N818 - a condition, handled inside the consumer
    """The stream or its consumer group vanished (a Redis restart without persistence)."""


class EventStream(Protocol):
    """Where accepted events wait for the consumer (see the module docstring)."""

    name: str

    def append(self, tenant_id: str, events: Sequence[Any]) -> list[str]:
        """Append durably; the entries' ids where the backend gives them cheaply."""
        ...

    def read(self, consumer: str, count: int, *, block_seconds: float = 0.0) -> list[Entry]: ...

    def ack(self, ids: Sequence[str]) -> None: ...

    def dead_letter(self, entry: Entry, category: Category, error: str) -> None: ...

    def lag(self) -> Lag: ...

    def dead_letter_counts(self) -> dict[Category, int]: ...

    def dead_letters(self, category: Category, *, limit: int = 20) -> list[DeadLetter]: ...

    def remove_dead_letters(self, category: Category, ids: Sequence[str] | None = None) -> int:
        """Remove the given dead letters (all of the category when ``ids`` is None)."""
        ...

    def close(self) -> None: ...


def encode_event(event: Any) -> str:
    """The JSON an entry carries (compact UTF-8; what a client that XADDs must write)."""
    return orjson.dumps(event, default=str).decode()


def decode_event(raw: str | bytes) -> Any:
    """The event an entry carries; an undecodable one comes back as the raw text, which
    validation then refuses (so it is dead-lettered as ``validation``, never lost)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
