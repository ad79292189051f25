"""The verified-key cache: a hit within its time, a miss after it, cleared on revoke."""

from __future__ import annotations

from tuneloop.api.principals import KeyCache, Principal
from tuneloop.store.auth_models import Role

WHO = Principal("acme", Role.VIEWER, "k1", "api_key")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_trusted_for_its_time_only() -> None:
    clock = Clock()
    cache = KeyCache(10.0, clock)
    cache.put("digest", WHO)
    clock.now += 9.9
    assert cache.get("digest") == WHO
    clock.now += 0.2
    assert cache.get("digest") is None


def test_clear_forgets_everything_and_zero_ttl_caches_nothing() -> None:
    cache = KeyCache(10.0, Clock())
    cache.put("digest", WHO)
    cache.clear()
    assert cache.get("digest") is None
    off = KeyCache(0.0, Clock())
    off.put("digest", WHO)
    assert off.get("digest") is None
