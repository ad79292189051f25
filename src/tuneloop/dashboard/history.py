"""An experiment's evidence at earlier looks, for its interval-over-time chart, remembered.

The looks sit on a fixed grid from the experiment's start (every 1 s, 2 s, 5 s ... 1 h,
2 h ... 1 d, 2 d, 1 week: the finest that gives at most ``most`` looks), so a page refreshed
every few seconds asks again for the same moments; each past look is analyzed once per
process and kept for an hour. Only the newest look (now) is new on each refresh.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from cachetools import TTLCache

from tuneloop.dashboard.charts import Interval

_MINUTE, _HOUR, _DAY = 60, 3600, 86400
GRID = tuple(
    timedelta(seconds=s)
    for s in (
        *(1, 2, 5, 10, 15, 30),
        *(m * _MINUTE for m in (1, 2, 5, 10, 15, 30)),
        *(h * _HOUR for h in (1, 2, 3, 6, 12)),
        *(d * _DAY for d in (1, 2, 7)),
    )
)

Look = Callable[[datetime], Interval | None]  # the interval as it stood at a moment

_remembered: TTLCache[tuple[str, str, datetime], Interval | None] = TTLCache(4096, 3600)
_lock = threading.Lock()


def cutoffs(start: datetime, end: datetime, *, most: int) -> list[datetime]:
    """Grid moments after ``start`` and before ``end``: at most ``most - 1``, the latest."""
    span = end - start
    if span <= timedelta(0):
        return []
    step = next((g for g in GRID if span / g <= most - 1), span / (most - 1))
    count = int(span / step)
    moments = [start + step * k for k in range(1, count + 1) if start + step * k < end]
    return moments[-(most - 1) :]


def looks(
    tenant_id: str, key: str, *, start: datetime, end: datetime, most: int, look: Look
) -> list[Interval]:
    """The interval at each grid moment before ``end`` (remembered), oldest first."""
    found: list[Interval] = []
    for moment in cutoffs(start, end, most=most):
        cache_key = (tenant_id, key, moment)
        with _lock:
            known = cache_key in _remembered
            interval = _remembered.get(cache_key)
        if not known:
            interval = look(moment)
            with _lock:
                _remembered[cache_key] = interval
        if interval is not None:
            found.append(interval)
    return found
