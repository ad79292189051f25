"""Rate limiting per caller: a token bucket, in-process by default, in Redis when configured.

A bucket holds up to ``per_minute`` tokens and refills at ``per_minute / 60`` a second, so
a caller may burst a minute's worth and then continue at the steady rate. The Redis bucket
runs the same arithmetic in one Lua script (atomic across workers and replicas, clocked by
Redis itself). When Redis fails, requests are let through and a warning is logged:
rate limiting protects the service, it must not take it down.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_seconds: int = 0  # whole seconds, at least 1 when refused


class RateLimiter(Protocol):
    def hit(self, key: str) -> RateDecision: ...


class Unlimited:
    def hit(self, key: str) -> RateDecision:
        return RateDecision(allowed=True)


def take_token(
    tokens: float, last: float, now: float, *, capacity: float, per_second: float
) -> tuple[bool, float, float]:
    """One bucket step: (allowed, tokens left, seconds until a token) after refilling to ``now``."""
    tokens = min(capacity, tokens + max(0.0, now - last) * per_second)
    if tokens >= 1.0:
        return True, tokens - 1.0, 0.0
    return False, tokens, (1.0 - tokens) / per_second


def retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds))


class TokenBucketLimiter:
    """In-process buckets: exact within one process; each worker counts on its own."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> RateDecision:
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(key, (self.capacity, now))
            allowed, tokens, wait = take_token(
                tokens, last, now, capacity=self.capacity, per_second=self.per_second
            )
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self.max_keys:
                self._forget_full(now)
        return RateDecision(allowed, 0 if allowed else retry_after(wait))

    def _forget_full(self, now: float) -> None:
        # A bucket that has refilled completely is the same as no bucket: drop those.
        full_after = self.capacity / self.per_second
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}


# KEYS[1] bucket; ARGV capacity, tokens per millisecond. Returns {allowed, wait_ms}.
_BUCKET_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local last = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - last) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate) + 1000)
return {allowed, wait}
"""


class RedisRateLimiter:
    """Buckets shared by every worker and replica, in Redis under ``prefix``."""

    def __init__(self, client: Any, per_minute: int, *, prefix: str) -> None:
        self.capacity = per_minute
        self.per_ms = per_minute / 60_000.0
        self.prefix = prefix
        self._script = client.register_script(_BUCKET_SCRIPT)

    def hit(self, key: str) -> RateDecision:
        from redis.exceptions import RedisError

        try:
            allowed, wait_ms = self._script(
                keys=[f"{self.prefix}{key}"], args=[self.capacity, repr(self.per_ms)]
            )
        except RedisError as exc:
            log.warning(
                "rate limiter: redis failed, letting the request through",
                extra={"error_type": type(exc).__name__},
            )
            return RateDecision(allowed=True)
        if int(allowed):
            return RateDecision(allowed=True)
        return RateDecision(allowed=False, retry_after_seconds=retry_after(int(wait_ms) / 1000))


def limiter_for(per_minute: int, *, redis: Any | None, prefix: str) -> RateLimiter:
    """The limiter the settings ask for: none, in Redis when there is one, else in-process."""
    if per_minute <= 0:
        return Unlimited()
    if redis is not None:
        return RedisRateLimiter(redis, per_minute, prefix=prefix)
    return TokenBucketLimiter(per_minute)
