"""The event stream on Redis Streams: a consumer group, XACK after commit, XAUTOCLAIM, DLQ streams.

Layout (``KEY`` is ``events.stream_key``, default ``tuneloop:events``):

- ``KEY``: one entry per event, fields ``tenant`` (the tenant id) and ``event`` (the event's
  JSON, exactly as ``POST /v1/events`` takes one). A client with Redis may append itself:
  ``XADD tuneloop:events * tenant default event '{"idempotency_key":"e1","kind":"outcome",...}'``;
  the consumer validates it as the HTTP edge would (a bad one is dead-lettered, not lost).
- consumer group ``events.group``: entries are read with ``XREADGROUP``, acknowledged
  (``XACK``) and deleted (``XDEL``) only after their events are committed, so ``XLEN KEY``
  is the number of events waiting; entries idle longer than ``events.claim_idle_seconds``
  in a dead consumer's pending list are taken over with ``XAUTOCLAIM``; Redis counts
  deliveries (``XPENDING``).
- ``KEY:dlq:validation``, ``KEY:dlq:unknown_reference``, ``KEY:dlq:processing``: dead
  letters with fields ``source``, ``entry_id``, ``tenant``, ``event``, ``error``,
  ``attempts``, ``at``.

Durability is Redis's: an append is acknowledged once Redis has it in memory; production
needs ``appendonly yes`` with ``appendfsync everysec`` (or ``always``) and a replica, or
entries accepted just before a crash are lost (docs/operations.md). If the stream or the
group vanishes (a restart without persistence), the consumer recreates the group and goes on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError, ResponseError

from tuneloop.domain.event_stream import (
    Category,
    DeadLetter,
    Entry,
    Lag,
    StreamGone,
    decode_event,
    encode_event,
)
from tuneloop.errors import ExternalServiceError

# ARGV[1] is the tenant, each further argument one event's JSON: the entries a client's
# own XADDs would make (fields ``tenant`` and ``event``), in order, their ids returned.
_APPEND = """
local ids = {}
for i = 2, #ARGV do
    ids[i - 1] = redis.call('XADD', KEYS[1], '*', 'tenant', ARGV[1], 'event', ARGV[i])
end
return ids
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _millis(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


class RedisEventStream:
    """``EventStream`` on a Redis stream and consumer group (see the module docstring)."""

    def __init__(
        self, client: Any, *, key: str, group: str, claim_idle_seconds: float = 60.0
    ) -> None:
        self.client = client
        self.name = key
        self.group = group
        self.claim_idle_ms = int(claim_idle_seconds * 1000)
        self._group_ready = False  # created on first use: the app starts while Redis is down
        self._append_script: Any = None  # registered on first append (EVALSHA, else EVAL)

    def _ready(self) -> None:
        if not self._group_ready:
            self.ensure_group()
            self._group_ready = True

    def dlq_key(self, category: Category) -> str:
        return f"{self.name}:dlq:{category.value}"

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.name, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def append(self, tenant_id: str, events: Sequence[Any]) -> list[str]:
        """One entry per event, appended by one script call: one command and one reply per
        batch instead of one per event (a third of the edge's time went to packing XADDs and
        parsing their replies), and atomic: no other client's entry lands inside a batch."""
        if not events:
            return []
        if self._append_script is None:
            self._append_script = self.client.register_script(_APPEND)
        try:
            ids = self._append_script(
                keys=[self.name], args=[tenant_id, *(encode_event(event) for event in events)]
            )
        except RedisError as exc:
            raise ExternalServiceError(
                "redis", f"the event stream refused the append ({type(exc).__name__})"
            ) from exc
        return [_text(found) for found in ids]

    def read(self, consumer: str, count: int, *, block_seconds: float = 0.0) -> list[Entry]:
        try:
            self._ready()
            entries = self._reclaim(consumer, count)
            if len(entries) < count:
                block = int(block_seconds * 1000) if not entries and block_seconds > 0 else None
                found = self.client.xreadgroup(
                    self.group, consumer, {self.name: ">"}, count=count - len(entries), block=block
                )
                for _stream, messages in found or []:
                    entries += [self._entry(id_, fields, 1) for id_, fields in messages if fields]
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False
            raise StreamGone(f"stream {self.name!r} or its group vanished; recreated") from exc
        return entries

    def _reclaim(self, consumer: str, count: int) -> list[Entry]:
        """Entries idle in another (dead) consumer's pending list, with their delivery counts."""
        answer = self.client.xautoclaim(
            self.name, self.group, consumer, self.claim_idle_ms, start_id="0-0", count=count
        )
        claimed = [(_text(id_), fields) for id_, fields in answer[1] if fields]
        if not claimed:
            return []
        ids = {id_ for id_, _ in claimed}
        pending = self.client.xpending_range(
            self.name,
            self.group,
            min=claimed[0][0],
            max=claimed[-1][0],
            count=len(claimed) + 1000,
            consumername=consumer,
        )
        deliveries = {
            _text(item["message_id"]): int(item["times_delivered"])
            for item in pending
            if _text(item["message_id"]) in ids
        }
        return [self._entry(id_, fields, deliveries.get(id_, 2)) for id_, fields in claimed]

    def _entry(self, entry_id: Any, fields: dict[Any, Any], deliveries: int) -> Entry:
        # Field names are bytes from a plain client, str from one with decode_responses.
        tenant = fields.get(b"tenant", fields.get("tenant", b""))
        event = fields.get(b"event", fields.get("event", b""))
        return Entry(_text(entry_id), _text(tenant), decode_event(event), deliveries)

    def ack(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        pipe = self.client.pipeline(transaction=True)
        pipe.xack(self.name, self.group, *ids)
        pipe.xdel(self.name, *ids)  # the stream holds only what is still waiting
        pipe.execute()

    def dead_letter(self, entry: Entry, category: Category, error: str) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(
            self.dlq_key(category),
            {
                "source": self.name,
                "entry_id": entry.id,
                "tenant": entry.tenant_id,
                "event": encode_event(entry.event),
                "error": error,
                "attempts": entry.deliveries,
                "at": f"{time.time():.3f}",
            },
        )
        pipe.xack(self.name, self.group, entry.id)
        pipe.xdel(self.name, entry.id)
        pipe.execute()

    def lag(self) -> Lag:
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(self.name)
        pipe.xrange(self.name, "-", "+", count=1)
        pipe.time()
        length, first, (seconds, micros) = pipe.execute()
        if not length or not first:
            return Lag(0, None)
        now_ms = seconds * 1000 + micros // 1000
        return Lag(int(length), max(now_ms - _millis(_text(first[0][0])), 0) / 1000)

    def dead_letter_counts(self) -> dict[Category, int]:
        pipe = self.client.pipeline(transaction=False)
        for category in Category:
            pipe.xlen(self.dlq_key(category))
        return {category: int(n) for category, n in zip(Category, pipe.execute(), strict=True)}

    def dead_letters(self, category: Category, *, limit: int = 20) -> list[DeadLetter]:
        found = self.client.xrange(self.dlq_key(category), "-", "+", count=limit)
        letters = []
        for id_, raw in found:
            fields = {_text(k): _text(v) for k, v in raw.items()}
            letters.append(
                DeadLetter(
                    id=_text(id_),
                    category=category,
                    source=fields.get("source", self.name),
                    entry_id=fields.get("entry_id", ""),
                    tenant_id=fields.get("tenant", ""),
                    event=decode_event(fields.get("event", "")),
                    error=fields.get("error", ""),
                    attempts=int(fields.get("attempts", "0")),
                    at=float(fields.get("at", "0")),
                )
            )
        return letters

    def remove_dead_letters(self, category: Category, ids: Sequence[str] | None = None) -> int:
        key = self.dlq_key(category)
        if ids is None:
            count = int(self.client.xlen(key))
            self.client.delete(key)
            return count
        return int(self.client.xdel(key, *ids)) if ids else 0

    def close(self) -> None:
        """The client belongs to the caller."""
