"""The leader lease on the real database: one holder, renewal, steal after expiry, release."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.store import leases
from tuneloop.store.db import make_engine

T0 = datetime(2027, 1, 4, 9, tzinfo=UTC)
TTL = timedelta(seconds=30)


def test_one_holder_until_its_lease_expires_then_another_steals_it(engine: Engine) -> None:
    assert leases.try_acquire(engine, "a", now=T0, ttl=TTL)
    assert not leases.try_acquire(engine, "b", now=T0 + timedelta(seconds=1), ttl=TTL)
    assert leases.try_acquire(engine, "a", now=T0 + timedelta(seconds=20), ttl=TTL)  # renew
    assert not leases.try_acquire(engine, "b", now=T0 + timedelta(seconds=49), ttl=TTL)
    # a stops renewing (killed): at expiry b takes over, and a cannot come back.
    assert leases.try_acquire(engine, "b", now=T0 + timedelta(seconds=50), ttl=TTL)
    assert not leases.try_acquire(engine, "a", now=T0 + timedelta(seconds=51), ttl=TTL)
    lease = leases.read_lease(engine)
    assert lease is not None and lease.holder == "b"
    assert lease.acquired_at == T0 + timedelta(seconds=50)


def test_only_the_holder_records_ticks_and_a_release_hands_over_at_once(engine: Engine) -> None:
    assert leases.try_acquire(engine, "a", now=T0, ttl=TTL)
    assert leases.record_tick(engine, "a", at=T0, summary={"started": {}})
    assert not leases.record_tick(engine, "b", at=T0, summary={})
    assert not leases.release(engine, "b", now=T0)
    assert leases.release(engine, "a", now=T0 + timedelta(seconds=1))
    assert leases.try_acquire(engine, "b", now=T0 + timedelta(seconds=1), ttl=TTL)
    lease = leases.read_lease(engine)
    assert lease is not None and lease.last_tick_at == T0 and lease.last_tick == {"started": {}}


def race(
    own: Engine, name: str, now: datetime, barrier: threading.Barrier, winners: list[str]
) -> None:
    barrier.wait()
    try:
        if leases.try_acquire(own, name, now=now, ttl=TTL):
            winners.append(name)
    except Exception:  # a busy SQLite writer: it lost this round
        pass


def test_racing_workers_with_their_own_engines_never_both_win(
    engine: Engine, settings: Settings
) -> None:
    """Eight threads, each with its own engine (as separate processes would), race for the
    lease at each of 15 instants, the previous holder's lease having just expired."""
    engines = [make_engine(settings.database_url, settings.database) for _ in range(8)]
    try:
        for round_ in range(15):
            now = T0 + round_ * TTL
            winners: list[str] = []
            barrier = threading.Barrier(len(engines))

            threads = [
                threading.Thread(target=race, args=(own, f"w{i}", now, barrier, winners))
                for i, own in enumerate(engines)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            lease = leases.read_lease(engine)
            assert lease is not None
            assert winners == [lease.holder], (round_, winners)  # exactly one, the holder
            assert lease.renewed_at == now and lease.expires_at == now + TTL
    finally:
        for own in engines:
            own.dispose()
