"""Kafka dead-letter topics and lag: what ``tuneloop dlq`` and the metrics read.

A dead letter is a message on ``TOPIC.dlq.CATEGORY``: key = the tenant id, value = JSON with
``source`` (topic), ``partition``, ``offset``, ``entry_id``, ``tenant``, ``event``, ``error``,
``attempts`` and ``at``; the same coordinates, error and attempt count are headers too, for
tools that read headers only.

Kafka deletes no single message, so "removed" is an offset: the consumer group
``GROUP.dlq`` commits, per DLQ partition, how far letters were replayed or purged; listing
and counting start there. Removing letters that are not a prefix (a replay that refused some)
produces the kept ones again at the end of their topic and commits past them all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from tuneloop.domain.event_stream import Category, DeadLetter, Entry, Lag

TIMEOUT = 30.0  # seconds a confirmation or a metadata request may take


def header(message: Message, name: str) -> str | None:
    for key, value in _headers(message):
        if key == name and value is not None:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def confirmed(
    producer: Producer,
    topic: str,
    key: str,
    values: Sequence[str | bytes],
    *,
    headers: dict[str, str | bytes | None] | None = None,
) -> list[Message]:
    """Produce and wait until the broker acknowledged every message (``acks=all``)."""
    reports: list[tuple[KafkaError | None, Message]] = []
    for value in values:
        producer.produce(
            topic,
            value=value,
            key=key,
            headers=headers,
            on_delivery=lambda error, message: reports.append((error, message)),
        )
    producer.flush(TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while len(reports) < len(values) and time.monotonic() < deadline:
        producer.poll(0.05)  # another thread's flush may be serving our delivery reports
    failed = [error for error, _ in reports if error is not None]
    if failed or len(reports) < len(values):
        raise KafkaException(failed[0] if failed else KafkaError(KafkaError._TIMED_OUT))
    return [message for _, message in reports]


class KafkaDeadLetters:
    """The DLQ topics of one event topic, and the main group's lag (see the module docstring)."""

    def __init__(self, config: dict[str, Any], producer: Producer, *, topic: str, group: str):
        self.topic = topic
        self.producer = producer
        plain = config | {"enable.auto.commit": False, "auto.offset.reset": "earliest"}
        self._main = Consumer(plain | {"group.id": group})  # reads the group's offsets only
        self._inspect = Consumer(plain | {"group.id": f"{group}.dlq"})
        self.lock = threading.Lock()  # the API's threads share these two consumers

    def topic_of(self, category: Category) -> str:
        return f"{self.topic}.dlq.{category.value}"

    def put(self, category: Category, entry: Entry, error: str, *, at: float) -> None:
        partition, offset = (int(part) for part in entry.id.split("-", 1))
        letter = {
            "source": self.topic,
            "partition": partition,
            "offset": offset,
            "entry_id": entry.id,
            "tenant": entry.tenant_id,
            "event": entry.event,
            "error": error,
            "attempts": entry.deliveries,
            "at": round(at, 3),
        }
        headers: dict[str, str | bytes | None] = {
            "tuneloop-source-topic": self.topic,
            "tuneloop-source-partition": str(partition),
            "tuneloop-source-offset": str(offset),
            "tuneloop-error": error[:500],
            "tuneloop-attempts": str(entry.deliveries),
        }
        value = orjson.dumps(letter, default=str)
        confirmed(self.producer, self.topic_of(category), entry.tenant_id, [value], headers=headers)

    def _spans(self, consumer: Consumer, topic: str) -> list[tuple[TopicPartition, int, int]]:
        """Per partition of ``topic``: (partition, first offset not consumed, high watermark)."""
        found = consumer.list_topics(topic, timeout=TIMEOUT).topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(found.partitions)]
        committed = consumer.committed(tps, timeout=TIMEOUT)
        spans = []
        for tp, done in zip(tps, committed, strict=True):
            low, high = consumer.get_watermark_offsets(tp, timeout=TIMEOUT, cached=False)
            spans.append((tp, max(done.offset, low), high))
        return spans

    def counts(self) -> dict[Category, int]:
        return {
            category: sum(high - start for _, start, high in self._spans(self._inspect, topic))
            for category in Category
            for topic in [self.topic_of(category)]
        }

    def _messages(self, category: Category, limit: int) -> list[Message]:
        spans = [s for s in self._spans(self._inspect, self.topic_of(category)) if s[1] < s[2]]
        if not spans:
            return []
        wanted = {tp.partition: high for tp, _, high in spans}
        self._inspect.assign(
            [TopicPartition(tp.topic, tp.partition, start) for tp, start, _ in spans]
        )
        found: list[Message] = []
        try:
            while wanted and len(found) < limit:
                batch = self._inspect.consume(min(limit - len(found), 500), 1.0)
                for message in batch:
                    if message.error() is not None or message.partition() not in wanted:
                        continue
                    found.append(message)
                    if (message.offset() or 0) + 1 >= wanted[message.partition() or 0]:
                        del wanted[message.partition() or 0]
        finally:
            self._inspect.unassign()
        return sorted(found, key=lambda m: (m.partition() or 0, m.offset() or 0))[:limit]

    def letters(self, category: Category, *, limit: int = 20) -> list[DeadLetter]:
        return [_letter(category, m) for m in self._messages(category, limit)]

    def remove(self, category: Category, ids: Sequence[str] | None) -> int:
        topic = self.topic_of(category)
        if ids is None:
            spans = self._spans(self._inspect, topic)
            self._inspect.commit(
                offsets=[TopicPartition(topic, tp.partition, high) for tp, _, high in spans],
                asynchronous=False,
            )
            return sum(high - start for _, start, high in spans)
        wanted = set(ids)
        messages = self._messages(category, limit=sum(self.counts().values()) + 1)
        removed = [m for m in messages if _id(m) in wanted]
        offsets = []
        for partition in {m.partition() or 0 for m in removed}:
            last = max(m.offset() or 0 for m in removed if m.partition() == partition)
            kept = [
                m
                for m in messages
                if m.partition() == partition and (m.offset() or 0) < last and _id(m) not in wanted
            ]
            for message in kept:  # stays listed: produced again past the new offset
                key = message.key() or b""
                confirmed(
                    self.producer,
                    topic,
                    key.decode() if isinstance(key, bytes) else str(key),
                    [message.value() or b""],
                    headers=dict(_headers(message)),
                )
            offsets.append(TopicPartition(topic, partition, last + 1))
        if offsets:
            self._inspect.commit(offsets=offsets, asynchronous=False)
        return len(removed)

    def lag(self, now: float) -> Lag:
        """Entries past the group's committed offsets, and the oldest one's age."""
        spans = [s for s in self._spans(self._main, self.topic) if s[1] < s[2]]
        pending = sum(high - start for _, start, high in spans)
        if not pending:
            return Lag(0, None)
        oldest: float | None = None
        self._main.assign([TopicPartition(tp.topic, tp.partition, start) for tp, start, _ in spans])
        try:
            for message in self._main.consume(len(spans), 1.0):
                _kind, millis = message.timestamp()
                if message.error() is None and millis > 0:
                    age = max(now - millis / 1000, 0.0)
                    oldest = age if oldest is None else max(oldest, age)
        finally:
            self._main.unassign()
        return Lag(pending, oldest)

    def close(self) -> None:
        self._main.close()
        self._inspect.close()


def _headers(message: Message) -> list[tuple[str, Any]]:
    return list(message.headers() or [])  # type: ignore[arg-type]


def _id(message: Message) -> str:
    return f"{message.partition()}-{message.offset()}"


def _letter(category: Category, message: Message) -> DeadLetter:
    try:
        fields = orjson.loads(message.value() or b"{}")
    except orjson.JSONDecodeError:
        fields = {"error": "undecodable dead letter"}
    return DeadLetter(
        id=_id(message),
        category=category,
        source=str(fields.get("source", "")),
        entry_id=str(fields.get("entry_id", "")),
        tenant_id=str(fields.get("tenant", "")),
        event=fields.get("event"),
        error=str(fields.get("error", "")),
        attempts=int(fields.get("attempts", 0)),
        at=float(fields.get("at", 0.0)),
    )
