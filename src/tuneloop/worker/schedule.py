"""When a cron schedule fires, in its own time zone (cronsim; see decision 0011).

Pure: a function of the expression, the zone and the times given. A missed fire is due
once: ``due_fire`` returns only the latest fire not yet claimed, however many passed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim

from tuneloop.config import check_cron, check_timezone

_JUST_AFTER = timedelta(microseconds=1)  # cronsim iterates strictly after/before its start

__all__ = ["check_cron", "check_timezone", "due_fire", "latest_fire", "next_fire"]


def next_fire(cron: str, zone: str, after: datetime) -> datetime:
    """The first fire strictly after ``after`` (UTC)."""
    local = after.astimezone(ZoneInfo(zone))
    return next(CronSim(cron, local)).astimezone(UTC)


def latest_fire(cron: str, zone: str, at: datetime) -> datetime:
    """The last fire at or before ``at`` (UTC)."""
    local = (at + _JUST_AFTER).astimezone(ZoneInfo(zone))
    return next(CronSim(cron, local, reverse=True)).astimezone(UTC)


def due_fire(
    cron: str, zone: str, *, now: datetime, anchor: datetime, last_claimed: datetime | None
) -> datetime | None:
    """The fire to run now, if any: the latest one at or before ``now`` that came after the
    schedule's anchor (when the tenant was first seen) and after the last claimed fire.

    After a week of downtime this is the one latest fire, so the catch-up is one run.
    """
    fire = latest_fire(cron, zone, now)
    floor = anchor if last_claimed is None else max(anchor, last_claimed)
    return fire if fire > floor else None
