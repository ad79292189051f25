"""Each trigger's reading: its current value against its threshold, and whether it fires.

Pure. The drift trigger asks the sequential test of ``experiments.stats`` (always valid
however often the worker looks), not a point estimate: it fires when the whole
always-valid interval of the champion's relative change lies below ``-drift_drop``, the
same rule the rollout's engagement guardrail uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tuneloop.domain.experiments import Moments
from tuneloop.domain.runs import Trigger
from tuneloop.experiments.stats.moments import mean_stats
from tuneloop.experiments.stats.sequential import sequential_test


@dataclass(frozen=True)
class Reading:
    """One trigger now: its value, its threshold, whether it fires, and why in words."""

    trigger: Trigger
    value: float | None
    threshold: float | None
    fires: bool
    detail: str


def off(trigger: Trigger) -> Reading:
    return Reading(trigger, None, None, False, "off")


def data_reading(new_posts: int, threshold: int | None) -> Reading:
    if threshold is None:
        return off(Trigger.DATA)
    fires = new_posts >= threshold
    sign = ">=" if fires else "<"
    detail = f"{new_posts} new qualifying posts {sign} {threshold}"
    return Reading(Trigger.DATA, float(new_posts), float(threshold), fires, detail)


def freshness_reading(
    champion_since: datetime | None, now: datetime, max_age_days: float | None
) -> Reading:
    if max_age_days is None:
        return off(Trigger.FRESHNESS)
    if champion_since is None:
        return Reading(Trigger.FRESHNESS, None, max_age_days, False, "no champion yet")
    age = (now - champion_since) / timedelta(days=1)
    fires = age > max_age_days
    sign = ">" if fires else "<="
    detail = f"champion is {age:.1f} days old {sign} {max_age_days:g}"
    return Reading(Trigger.FRESHNESS, age, max_age_days, fires, detail)


def drift_reading(
    baseline: Moments | None,
    recent: Moments | None,
    *,
    drop: float | None,
    alpha: float,
    min_units: int,
) -> Reading:
    """``baseline``/``recent``: per-unit engagement moments of the champion in each window."""
    if drop is None:
        return off(Trigger.DRIFT)
    if baseline is None or recent is None:
        return Reading(Trigger.DRIFT, None, -drop, False, "no champion yet")
    if min(baseline.n, recent.n) < min_units:
        detail = f"{recent.n} / {baseline.n} units (recent / baseline), {min_units} needed each"
        return Reading(Trigger.DRIFT, None, -drop, False, detail)
    result = sequential_test(
        mean_stats(baseline.n, baseline.sum, baseline.sum_squares),
        mean_stats(recent.n, recent.sum, recent.sum_squares),
        difference="relative",
        alpha=alpha,
    )
    if result.error is not None or result.ci is None or result.estimate is None:
        return Reading(Trigger.DRIFT, None, -drop, False, f"no test: {result.error}")
    low, high = result.ci
    fires = high < -drop
    verdict = "dropped" if fires else "no significant drop of"
    detail = (
        f"{verdict} {drop:.0%}: change {result.estimate:+.1%}, "
        f"always-valid CI [{low:+.1%}, {high:+.1%}]"
    )
    return Reading(Trigger.DRIFT, result.estimate, -drop, fires, detail)
