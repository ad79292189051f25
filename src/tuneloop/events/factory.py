"""Picks the event stream from Settings: Redis Streams with ``REDIS_URL``, else the app database;
Kafka only when ``events.stream = "kafka"`` (the optional ``kafka`` extra)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.domain.event_stream import EventStream
from tuneloop.errors import ConfigurationError
from tuneloop.events.consumer import EventConsumer


def stream_for(settings: Settings, engine: Engine, redis: Any | None) -> EventStream:
    """The configured stream: ``events.stream`` (auto: Redis when a client is given)."""
    events = settings.events
    kind = events.stream
    if kind == "auto":
        kind = "redis" if redis is not None else "database"
    if kind == "kafka":
        return _kafka_stream(settings)
    if kind == "redis":
        if redis is None:
            raise ConfigurationError("events.stream is 'redis' but REDIS_URL is not set")
        from tuneloop.events.redis_stream import RedisEventStream

        return RedisEventStream(
            redis,
            key=events.stream_key,
            group=events.group,
            claim_idle_seconds=events.claim_idle_seconds,
        )
    from tuneloop.store.event_stream import DatabaseEventStream, sqlite_stream_engine

    own = events.sqlite_own_file and engine.dialect.name == "sqlite"
    stream_engine = sqlite_stream_engine(engine) if own else engine
    return DatabaseEventStream(
        stream_engine,
        claim_idle_seconds=events.claim_idle_seconds,
        owns_engine=stream_engine is not engine,
    )


def _kafka_stream(settings: Settings) -> EventStream:
    events = settings.events
    if not events.kafka_bootstrap_servers:
        raise ConfigurationError(
            "events.stream is 'kafka' but events.kafka_bootstrap_servers is empty"
        )
    try:
        from tuneloop.events.kafka_stream import KafkaEventStream
    except ImportError as exc:
        raise ConfigurationError(
            "events.stream is 'kafka' but confluent-kafka is not installed: "
            "pip install 'tuneloop[kafka]'"
        ) from exc
    return KafkaEventStream(
        bootstrap_servers=events.kafka_bootstrap_servers,
        topic=events.kafka_topic,
        group=events.group,
        claim_idle_seconds=events.claim_idle_seconds,
        config=events.kafka_config,
    )


def consumer_for(
    settings: Settings,
    engine: Engine,
    stream: EventStream,
    *,
    on_written: Callable[[str], None] | None = None,
) -> EventConsumer:
    events = settings.events
    return EventConsumer(
        stream,
        engine,
        batch_size=events.batch_size,
        max_deliveries=events.max_deliveries,
        poll_seconds=events.poll_seconds,
        on_written=on_written,
    )


def redis_for(settings: Settings) -> Any | None:
    """A redis-py client for ``REDIS_URL`` (None without one), for the CLI's consumer."""
    if not settings.redis.url:
        return None
    import redis

    return redis.Redis.from_url(
        settings.redis.url, socket_keepalive=True, health_check_interval=30, socket_timeout=30
    )
