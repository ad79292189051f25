"""A worker on a scaled clock decides in scaled time but keeps its lease in wall time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tuneloop.config import Settings
from tuneloop.domain.clock import ScaledClock, SystemClock
from tuneloop.store.leases import read_lease
from tuneloop.wiring import release_engine
from tuneloop.worker.process import build_worker


def test_a_worker_on_a_scaled_clock_keeps_its_lease_on_the_wall_clock(settings: Settings) -> None:
    scaled = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"clock_speed": 3600.0})}
    )
    worker = build_worker(scaled)
    try:
        assert isinstance(worker.clock, ScaledClock) and worker.clock.speed == 3600
        assert isinstance(worker.lease_clock, SystemClock)
        assert worker.tick().leader
        lease = read_lease(worker.engine)
        assert lease is not None and lease.last_tick_at is not None
        # 90 s from now in wall time; on the scaled clock it would be 90 hours away.
        expected = datetime.now(UTC) + timedelta(seconds=90)
        assert abs(lease.expires_at - expected) < timedelta(seconds=30)
    finally:
        worker.actions.close()
        release_engine(scaled)
