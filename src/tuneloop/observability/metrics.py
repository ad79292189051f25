"""Prometheus metrics: the documented ``fine_tuning_*`` names, HTTP metrics, and their updaters.

All live in prometheus-client's default registry, defined once at import. The pipeline,
experiment and rollout code update them through the objects below; the API updates the
pool and breaker gauges on each scrape, from the real pools and breakers.

With several worker processes (``tuneloop serve --workers N``), ``PROMETHEUS_MULTIPROC_DIR``
is set before any worker starts: each process then writes its values to files there and
``exposition()`` merges them, so whichever worker answers a scrape reports the whole
server. Counters and histograms add up; each gauge says how in its ``multiprocess_mode``
(ignored in a single process).

Rates with no data yet (cache hit rate, A/B success rate) start as NaN, not 0, so an alert
like ``cache hit rate < 0.8`` does not fire on a process that has not measured anything.
Model gauges are labelled by ``model_id`` and ``version``: one series per model.
"""

from __future__ import annotations

import atexit
import math
import os
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any, Final

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
BREAKER_STATES = ("CLOSED", "OPEN", "HALF_OPEN")

# Across workers: pools add up over the live processes; a breaker state reads 1 when it is
# current in any live worker (an OPEN in one worker must not be hidden by the others);
# last-run and per-model figures are whichever process set them last.
POOL_MODE: Final = "livesum"
BREAKER_MODE: Final = "livemax"
LATEST_MODE: Final = "mostrecent"

DB_CONNECTIONS_ACTIVE = Gauge(
    "fine_tuning_db_connections_active", "DB connections checked out.", multiprocess_mode=POOL_MODE
)
DB_CONNECTIONS_IDLE = Gauge(
    "fine_tuning_db_connections_idle",
    "DB connections idle in the pool.",
    multiprocess_mode=POOL_MODE,
)
REDIS_CONNECTIONS_ACTIVE = Gauge(
    "fine_tuning_redis_connections_active", "Redis connections in use.", multiprocess_mode=POOL_MODE
)
REDIS_CONNECTIONS_IDLE = Gauge(
    "fine_tuning_redis_connections_idle", "Redis connections idle.", multiprocess_mode=POOL_MODE
)
OPENAI_BREAKER_STATE = Gauge(
    "fine_tuning_openai_circuit_breaker_state",
    "1 for the OpenAI breaker's state.",
    ["state"],
    multiprocess_mode=BREAKER_MODE,
)
OPENAI_FAILURES = Counter("fine_tuning_openai_failures_total", "Failed calls to OpenAI.")
MLFLOW_BREAKER_STATE = Gauge(
    "fine_tuning_mlflow_circuit_breaker_state",
    "1 for the MLflow breaker's state.",
    ["state"],
    multiprocess_mode=BREAKER_MODE,
)
MLFLOW_FAILURES = Counter("fine_tuning_mlflow_failures_total", "Failed calls to MLflow.")
PIPELINE_DURATION = Histogram(
    "fine_tuning_pipeline_execution_duration_seconds",
    "Wall time of one pipeline run.",
    buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, math.inf),
)
PIPELINE_MEMORY_PEAK_MB = Gauge(
    "fine_tuning_pipeline_memory_peak_mb",
    "Peak RSS of the last run.",
    multiprocess_mode=LATEST_MODE,
)
PIPELINE_TRAINING_EXAMPLES = Counter(
    "fine_tuning_pipeline_training_examples_total", "Training examples built by pipeline runs."
)
PIPELINE_CACHE_HIT_RATE = Gauge(
    "fine_tuning_pipeline_cache_hit_rate", "Cache hits / lookups.", multiprocess_mode=LATEST_MODE
)
MODEL_LABELS = ("model_id", "version")
MODEL_ENGAGEMENT_RATE = Gauge(
    "fine_tuning_model_engagement_rate",
    "Live engagement rate per model.",
    MODEL_LABELS,
    multiprocess_mode=LATEST_MODE,
)
MODEL_COST_PER_TOKEN = Gauge(
    "fine_tuning_model_cost_per_token",
    "Cost per token per model (USD).",
    MODEL_LABELS,
    multiprocess_mode=LATEST_MODE,
)
MODEL_QUALITY_SCORE = Gauge(
    "fine_tuning_model_quality_score",
    "Quality score per model.",
    MODEL_LABELS,
    multiprocess_mode=LATEST_MODE,
)
AB_TEST_SUCCESS_RATE = Gauge(
    "fine_tuning_ab_test_success_rate",
    "Share of finished A/B tests that promoted the candidate.",
    multiprocess_mode=LATEST_MODE,
)
ROLLOUT_STALLED = Gauge(
    "tuneloop_rollout_stalled",
    "1 while a deployment's step has waited rollout.stall_timeout_hours past its due time "
    "for conclusive data, else 0 (written by every rollout tick).",
    ("tenant", "deployment"),
    multiprocess_mode=LATEST_MODE,
)
PIPELINE_CACHE_HIT_RATE.set(math.nan)
AB_TEST_SUCCESS_RATE.set(math.nan)

HTTP_REQUESTS = Counter(
    "tuneloop_http_requests_total",
    "HTTP requests by route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "tuneloop_http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
DEAD_LETTERED_EVENTS = Counter(
    "tuneloop_generation_events_dead_lettered_total",
    "Generation events the database refused alone, kept in the dead-letter file.",
)
UPSTREAM_BREAKER_STATE = Gauge(
    "tuneloop_upstream_circuit_breaker_state",
    "1 for each serving upstream breaker's current state.",
    ["upstream", "state"],
    multiprocess_mode=BREAKER_MODE,
)
UPSTREAM_FAILURES = Counter(
    "tuneloop_upstream_failures_total",
    "Failed calls to a serving upstream, as its breaker counted them.",
    ["upstream"],
)
UPSTREAM_FALLBACKS = Counter(
    "tuneloop_upstream_fallbacks_total",
    "Calls served by an upstream's fallback model while its breaker was open.",
    ["upstream"],
)

# The documented names, as they appear in the exposition (counters with their _total).
DOCUMENTED_NAMES = (
    "fine_tuning_db_connections_active",
    "fine_tuning_db_connections_idle",
    "fine_tuning_redis_connections_active",
    "fine_tuning_redis_connections_idle",
    "fine_tuning_openai_circuit_breaker_state",
    "fine_tuning_openai_failures_total",
    "fine_tuning_mlflow_circuit_breaker_state",
    "fine_tuning_mlflow_failures_total",
    "fine_tuning_pipeline_execution_duration_seconds",
    "fine_tuning_pipeline_memory_peak_mb",
    "fine_tuning_pipeline_training_examples_total",
    "fine_tuning_pipeline_cache_hit_rate",
    "fine_tuning_model_engagement_rate",
    "fine_tuning_model_cost_per_token",
    "fine_tuning_model_quality_score",
    "fine_tuning_ab_test_success_rate",
)


class LatencyWindow:
    """The last ``size`` request latencies, for /health's average response time."""

    def __init__(self, size: int = 1000) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._values.append(seconds)

    def average_ms(self) -> float:
        with self._lock:
            values = list(self._values)
        return round(1000 * sum(values) / len(values), 3) if values else 0.0


class CacheStats:
    """Hits and misses of tuneloop's caches; keeps the hit-rate gauge current."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def record(self, *, hit: bool) -> None:
        with self._lock:
            self.hits += hit
            self.misses += not hit
            PIPELINE_CACHE_HIT_RATE.set(self.hits / (self.hits + self.misses))

    def hit_rate(self) -> float | None:
        with self._lock:
            lookups = self.hits + self.misses
            return self.hits / lookups if lookups else None


RECENT_LATENCY = LatencyWindow()
CACHE_STATS = CacheStats()


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    HTTP_LATENCY.labels(method=method, route=route).observe(seconds)
    RECENT_LATENCY.add(seconds)


WORKER_IS_LEADER = Gauge(
    "tuneloop_worker_is_leader",
    "1 while a worker holds an unexpired leader lease (read from the database at scrape).",
    multiprocess_mode="max",
)
WORKER_LAST_TICK = Gauge(
    "tuneloop_worker_last_tick_timestamp_seconds",
    "Epoch seconds of the leader's last completed tick (NaN before the first).",
    multiprocess_mode="max",
)
WORKER_LAST_TICK.set(math.nan)


def set_worker_gauges(status: str, detail: Mapping[str, Any] | None) -> None:
    """The worker's lease as /health reports it (``leading``, ``no_leader``, ``unknown``).

    The worker may run in another process or host (``tuneloop worker``), so the API reads
    its lease row at scrape time instead of the worker exporting its own gauges: the one
    scraped job then carries the alerting signal.
    """
    from datetime import datetime

    if status == "unknown":
        return  # the database is down; its own gauges and alerts say so
    WORKER_IS_LEADER.set(1 if status == "leading" else 0)
    last_tick = None if detail is None else detail.get("last_tick_at")
    if last_tick:
        WORKER_LAST_TICK.set(datetime.fromisoformat(last_tick).timestamp())


def set_pool_gauges(pools: Mapping[str, int]) -> None:
    """Pool sizes keyed like /health's ``connection_pools``."""
    DB_CONNECTIONS_ACTIVE.set(pools.get("db_connections_active", 0))
    DB_CONNECTIONS_IDLE.set(pools.get("db_connections_idle", 0))
    REDIS_CONNECTIONS_ACTIVE.set(pools.get("redis_connections_active", 0))
    REDIS_CONNECTIONS_IDLE.set(pools.get("redis_connections_idle", 0))


def set_breaker_state(breaker: str, state: str) -> None:
    """Mark ``state`` (CLOSED/OPEN/HALF_OPEN) current for the ``openai``/``mlflow`` breaker."""
    gauge = {"openai": OPENAI_BREAKER_STATE, "mlflow": MLFLOW_BREAKER_STATE}.get(breaker)
    if gauge is None:
        return
    for name in BREAKER_STATES:
        gauge.labels(state=name).set(1 if name == state else 0)


def count_dead_letter() -> None:
    DEAD_LETTERED_EVENTS.inc()


def set_upstream_breaker_state(upstream: str, state: str) -> None:
    """Mark ``state`` current for the serving upstream breaker ``upstream``."""
    for name in BREAKER_STATES:
        UPSTREAM_BREAKER_STATE.labels(upstream=upstream, state=name).set(1 if name == state else 0)


def count_upstream_failure(upstream: str) -> None:
    UPSTREAM_FAILURES.labels(upstream=upstream).inc()


def count_upstream_fallback(upstream: str) -> None:
    UPSTREAM_FALLBACKS.labels(upstream=upstream).inc()


def count_breaker_failure(breaker: str) -> None:
    """One failed call to the ``openai``/``mlflow`` service, as its breaker recorded it."""
    counter = {"openai": OPENAI_FAILURES, "mlflow": MLFLOW_FAILURES}.get(breaker)
    if counter is not None:
        counter.inc()


def multiprocess_dir() -> str | None:
    """The directory worker processes share their metrics through, or None (one process)."""
    return os.environ.get(MULTIPROC_ENV) or None


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus text format, and their content type: this process's
    registry, or every worker's values merged when running as several processes."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    # A fresh registry per scrape, as prometheus-client prescribes: the default one would
    # also export this process's own (partial) values.
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _forget_this_process(path: str, pid: int) -> None:
    """Drop this worker's ``live*`` gauges (pools, breaker states) when it exits."""
    if os.path.isdir(path):  # the server may already have removed the directory
        multiprocess.mark_process_dead(pid, path)


if (_path := multiprocess_dir()) is not None:
    # uvicorn starts workers with multiprocessing's "spawn": they leave through sys.exit, so
    # atexit handlers run on a normal or signalled shutdown (not after SIGKILL).
    atexit.register(_forget_this_process, _path, os.getpid())


def model_labels(model_id: str, version: str | int) -> dict[str, Any]:
    return {"model_id": model_id, "version": str(version)}


def observe_pipeline_run(*, seconds: float, peak_mb: float | None, training_examples: int) -> None:
    """Record one finished pipeline execution: its wall time, peak memory, examples built."""
    PIPELINE_DURATION.observe(seconds)
    if peak_mb is not None:
        PIPELINE_MEMORY_PEAK_MB.set(peak_mb)
    if training_examples > 0:
        PIPELINE_TRAINING_EXAMPLES.inc(training_examples)
