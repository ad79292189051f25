"""The token bucket: burst, steady refill, Retry-After, per-key isolation, bounded memory."""

from __future__ import annotations

import pytest

from tuneloop.api.ratelimit import (
    TokenBucketLimiter,
    Unlimited,
    limiter_for,
    retry_after,
    take_token,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_allows_a_minutes_burst_then_refuses() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(60, clock=clock)
    assert all(limiter.hit("k").allowed for _ in range(60))
    refused = limiter.hit("k")
    assert not refused.allowed
    assert refused.retry_after_seconds == 1


def test_tokens_come_back_at_the_steady_rate() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(6, clock=clock)  # one token every 10 s
    for _ in range(6):
        limiter.hit("k")
    assert limiter.hit("k").retry_after_seconds == 10
    clock.now += 9.5
    assert limiter.hit("k").retry_after_seconds == 1
    clock.now += 0.5
    assert limiter.hit("k").allowed
    assert not limiter.hit("k").allowed


def test_keys_do_not_share_a_bucket() -> None:
    limiter = TokenBucketLimiter(1, clock=Clock())
    assert limiter.hit("a").allowed
    assert limiter.hit("b").allowed
    assert not limiter.hit("a").allowed


def test_refilled_buckets_are_forgotten_when_there_are_too_many() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(60, clock=clock, max_keys=10)
    for i in range(10):
        limiter.hit(f"old-{i}")
    clock.now += 61
    limiter.hit("new")
    assert set(limiter._buckets) == {"new"}


@pytest.mark.parametrize(
    ("tokens", "elapsed", "expected"),
    [(0.0, 0.0, (False, 0.0, 10.0)), (0.5, 5.0, (True, 0.0, 0.0)), (3.0, 100.0, (True, 2.0, 0.0))],
)
def test_one_step(tokens: float, elapsed: float, expected: tuple[bool, float, float]) -> None:
    got = take_token(tokens, 0.0, elapsed, capacity=3.0, per_second=0.1)
    assert got == pytest.approx(expected)


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert [retry_after(s) for s in (0.0, 0.01, 1.0, 1.2)] == [1, 1, 1, 2]


def test_zero_per_minute_means_no_limit() -> None:
    assert isinstance(limiter_for(0, redis=None, prefix="x"), Unlimited)
    assert isinstance(limiter_for(5, redis=None, prefix="x"), TokenBucketLimiter)
