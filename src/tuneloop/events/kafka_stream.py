"""The event stream on Kafka: confirmed produces, offsets committed after the database commit.

Layout (``TOPIC`` is ``events.kafka_topic``, default ``tuneloop.events``):

- ``TOPIC``: one message per event, key = the tenant id (a tenant's events stay in order in
  one partition), value = the event's JSON exactly as ``POST /v1/events`` takes one. A client
  with Kafka may produce itself; the consumer validates as the HTTP edge would.
- consumer group ``events.group`` with ``enable.auto.commit=false``: a partition's offset is
  committed only up to the first entry not yet done (acknowledged after its events were
  committed to the events table, dead-lettered, or re-queued), so a consumer that dies
  leaves everything after the committed offset to be delivered again, and the events
  table's idempotency key makes the second write a no-op.
- Kafka keeps no per-message delivery count, so an entry the consumer leaves for redelivery
  (an unknown reference, a failed write) is produced again at the end of its partition with
  headers ``tuneloop-deliveries`` (deliveries so far) and ``tuneloop-not-before`` (now plus
  ``events.claim_idle_seconds``), and its old offset counts as done. A re-queued copy read
  before its time is held in memory, uncommitted, until it is due.
- ``TOPIC.dlq.validation``, ``TOPIC.dlq.unknown_reference``, ``TOPIC.dlq.processing``: dead
  letters (``events/kafka_dlq.py``).

Appends and dead letters use an idempotent producer with ``acks=all`` and return only when
the broker confirmed them. Why Kafka is optional and how this maps onto the stream
contract: docs/decisions/0022-kafka-event-stream.md.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from tuneloop.domain.event_stream import (
    Category,
    DeadLetter,
    Entry,
    Lag,
    decode_event,
    encode_event,
)
from tuneloop.errors import ExternalServiceError
from tuneloop.events.kafka_dlq import KafkaDeadLetters, confirmed, header

DELIVERIES = "tuneloop-deliveries"
NOT_BEFORE = "tuneloop-not-before"
JOIN_SECONDS = 30.0  # how long a first read waits for the group to assign partitions
FETCH_SECONDS = 5.0  # how long a read waits for messages it knows are there


@dataclass
class _Open:
    """An entry read but not done yet (handed to the consumer, or held until due)."""

    message: Message
    entry: Entry
    due: float  # epoch seconds; 0 for an entry handed out


class KafkaEventStream:
    """``EventStream`` on a Kafka topic and consumer group (see the module docstring)."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        group: str,
        claim_idle_seconds: float = 60.0,
        config: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = topic
        self.group = group
        self.retry_delay = claim_idle_seconds
        self.clock = clock
        self.config: dict[str, Any] = {"bootstrap.servers": bootstrap_servers, **(config or {})}
        self.producer = Producer(
            self.config | {"enable.idempotence": True, "acks": "all", "linger.ms": 5}
        )
        self.dlq = KafkaDeadLetters(self.config, self.producer, topic=topic, group=group)
        self._consumer: Consumer | None = None  # joins the group on the first read
        self._open: dict[str, _Open] = {}  # entry id -> read, not done
        self._read_to: dict[int, int] = {}  # partition -> offset after the last one read

    # -- append --------------------------------------------------------------------------

    def append(self, tenant_id: str, events: Sequence[Any]) -> list[str]:
        if not events:
            return []
        values = [encode_event(event) for event in events]
        try:
            done = confirmed(self.producer, self.name, tenant_id, values)
        except KafkaException as exc:
            raise ExternalServiceError(
                "kafka", f"the event stream refused the append ({exc})"
            ) from exc
        return [f"{message.partition()}-{message.offset()}" for message in done]

    # -- read, ack ------------------------------------------------------------------------

    def _joined(self) -> Consumer:
        if self._consumer is None:
            consumer = Consumer(
                self.config
                | {
                    "group.id": self.group,
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                }
            )
            consumer.subscribe([self.name], on_revoke=self._revoked)
            self._consumer = consumer
            deadline = time.monotonic() + JOIN_SECONDS
            while not consumer.assignment() and time.monotonic() < deadline:
                self._take(consumer.consume(500, 0.1))
        return self._consumer

    def read(self, consumer: str, count: int, *, block_seconds: float = 0.0) -> list[Entry]:
        kafka = self._joined()
        self._requeue_left_over()
        entries = self._due(count)
        if len(entries) < count:
            timeout = block_seconds if not entries and block_seconds > 0 else 0.0
            self._take(kafka.consume(count - len(entries), timeout))
            deadline = time.monotonic() + FETCH_SECONDS
            while not (self._due_any() or entries) and time.monotonic() < deadline:
                if not self._behind(kafka):
                    break
                self._take(kafka.consume(count, 0.1))  # fetched data not here yet
            entries += self._due(count - len(entries))
        return entries

    def _take(self, messages: list[Message]) -> None:
        now = self.clock()
        for message in messages:
            if message.error() is not None:
                continue
            partition, offset = message.partition() or 0, message.offset() or 0
            entry_id = f"{partition}-{offset}"
            deliveries = int(header(message, DELIVERIES) or 0) + 1
            due = float(header(message, NOT_BEFORE) or 0)
            raw_key = message.key()
            tenant = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key or "")
            entry = Entry(entry_id, tenant, decode_event(message.value() or b""), deliveries)
            self._open[entry_id] = _Open(message, entry, due if due > now else -1.0)
            self._read_to[partition] = max(self._read_to.get(partition, 0), offset + 1)

    def _due_any(self) -> bool:
        now = self.clock()
        return any(item.due != 0 and item.due <= now for item in self._open.values())

    def _due(self, count: int) -> list[Entry]:
        """Entries read and due (due -1: never handed out; held ones once their time came)."""
        now = self.clock()
        entries: list[Entry] = []
        for item in self._open.values():
            if len(entries) >= count:
                break
            if item.due != 0 and item.due <= now:
                item.due = 0  # handed out
                entries.append(item.entry)
        return entries

    def _behind(self, kafka: Consumer) -> bool:
        """Whether an assigned partition has messages past what this consumer has read."""
        for tp in kafka.assignment():
            _low, high = kafka.get_watermark_offsets(tp, timeout=5, cached=False)
            position = self._read_to.get(tp.partition)
            if position is None:
                committed = kafka.committed([tp], timeout=5)[0].offset
                position = max(committed, _low)
            if position < high:
                return True
        return False

    def _requeue_left_over(self) -> None:
        """Entries handed out earlier and neither acknowledged nor dead-lettered: produce them
        again with one more delivery and a not-before time (see the module docstring)."""
        left = [item for item in self._open.values() if item.due == 0]
        if not left:
            return
        not_before = f"{self.clock() + self.retry_delay:.3f}"
        for item in left:
            headers: dict[str, str | bytes | None] = {
                DELIVERIES: str(item.entry.deliveries),
                NOT_BEFORE: not_before,
            }
            confirmed(
                self.producer,
                self.name,
                item.entry.tenant_id,
                [encode_event(item.entry.event)],
                headers=headers,
            )
        self._done([item.entry.id for item in left])

    def ack(self, ids: Sequence[str]) -> None:
        self._done(ids)

    def _done(self, ids: Sequence[str]) -> None:
        for entry_id in ids:
            self._open.pop(entry_id, None)
        self._commit()

    def _commit(self, only: set[int] | None = None) -> None:
        """Commit each partition up to its first entry not done (synchronously)."""
        if self._consumer is None:
            return
        first_open: dict[int, int] = {}
        for item in self._open.values():
            partition, offset = item.message.partition() or 0, item.message.offset() or 0
            first_open[partition] = min(first_open.get(partition, offset), offset)
        offsets = [
            TopicPartition(self.name, partition, first_open.get(partition, upto))
            for partition, upto in self._read_to.items()
            if only is None or partition in only
        ]
        if offsets:
            self._consumer.commit(offsets=offsets, asynchronous=False)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Another consumer takes these partitions: commit what is done, forget the rest
        (the new owner reads it again from the committed offset)."""
        gone = {tp.partition for tp in partitions}
        with contextlib.suppress(KafkaException):  # else the new owner redelivers: no loss
            self._commit(gone)
        self._open = {k: v for k, v in self._open.items() if v.message.partition() not in gone}
        self._read_to = {p: o for p, o in self._read_to.items() if p not in gone}

    # -- dead letters, lag ----------------------------------------------------------------

    def dead_letter(self, entry: Entry, category: Category, error: str) -> None:
        self.dlq.put(category, entry, error, at=self.clock())
        self._done([entry.id])

    def lag(self) -> Lag:
        with self.dlq.lock:
            return self.dlq.lag(self.clock())

    def dead_letter_counts(self) -> dict[Category, int]:
        with self.dlq.lock:
            return self.dlq.counts()

    def dead_letters(self, category: Category, *, limit: int = 20) -> list[DeadLetter]:
        with self.dlq.lock:
            return self.dlq.letters(category, limit=limit)

    def remove_dead_letters(self, category: Category, ids: Sequence[str] | None = None) -> int:
        with self.dlq.lock:
            return self.dlq.remove(category, ids)

    def close(self) -> None:
        """Leave the group (what is not committed is delivered to the next consumer)."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        self.dlq.close()
        self.producer.flush(10)
