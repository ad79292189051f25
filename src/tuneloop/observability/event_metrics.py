"""Prometheus metrics of the event stream: waiting events, their age, dead letters.

``tuneloop_events_pending`` and ``tuneloop_events_oldest_pending_age_seconds`` are read from
the stream on each scrape (every worker reads the same stream, so the latest value is the
answer); the dead-letter counter counts in the process that dead-lettered, the depth gauge
is read from the queues.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge

from tuneloop.domain.event_stream import Category, EventStream

_LATEST: Final = "mostrecent"

EVENTS_PENDING = Gauge(
    "tuneloop_events_pending",
    "Events accepted into the stream and not yet written to the events table.",
    multiprocess_mode=_LATEST,
)
EVENTS_OLDEST_PENDING_AGE = Gauge(
    "tuneloop_events_oldest_pending_age_seconds",
    "Age of the oldest event not yet written (consumer lag); 0 when none waits.",
    multiprocess_mode=_LATEST,
)
EVENTS_DEAD_LETTERED = Counter(
    "tuneloop_events_dead_lettered_total",
    "Stream entries moved to a dead-letter queue, by category.",
    ["category"],
)
EVENTS_DEAD_LETTER_DEPTH = Gauge(
    "tuneloop_events_dead_letter_depth",
    "Entries waiting in each dead-letter queue.",
    ["category"],
    multiprocess_mode=_LATEST,
)
EVENTS_WRITTEN = Counter(
    "tuneloop_events_consumed_total", "Events the consumer wrote (new rows) to the events table."
)
for _category in Category:  # every series exists from the start, at 0
    EVENTS_DEAD_LETTERED.labels(category=_category.value)
    EVENTS_DEAD_LETTER_DEPTH.labels(category=_category.value).set(0)


def count_dead_letter(category: Category) -> None:
    EVENTS_DEAD_LETTERED.labels(category=category.value).inc()


def refresh_stream_gauges(stream: EventStream) -> None:
    """Read the stream's lag and dead-letter depths into the gauges (on each scrape)."""
    lag = stream.lag()
    EVENTS_PENDING.set(lag.pending)
    EVENTS_OLDEST_PENDING_AGE.set(lag.oldest_age_seconds or 0.0)
    for category, depth in stream.dead_letter_counts().items():
        EVENTS_DEAD_LETTER_DEPTH.labels(category=category.value).set(depth)
