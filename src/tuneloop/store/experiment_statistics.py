"""Per-arm sufficient statistics of an experiment, read from ``unit_rollups``.

The metrics are reduced to one value per unit (the randomisation unit) before the arm's
moments are taken, so that many events from one unit do not pass for independent
observations. Each unit's value comes from its rollup rows (one per hour it was active),
so the cost of a report follows units x hours, not events (bench/analyze.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Float, case, cast, func, select, union_all

from tuneloop.domain.experiments import (
    METRICS,
    RATIO_METRICS,
    ArmStatistics,
    Moments,
    PrePeriod,
    RatioMoments,
    RatioPrePeriod,
)
from tuneloop.store.experiment_models import OutcomeEvent
from tuneloop.store.rollup_models import UnitRollup
from tuneloop.store.rollup_windows import (
    edge_hours,
    edge_rows,
    rollup_columns,
    whole_hours,
    window_rows,
)


def arm_statistics(
    engine: Engine,
    tenant_id: str,
    experiment_key: str,
    *,
    until: datetime | None = None,
    pre_period_since: datetime | None = None,
) -> list[ArmStatistics]:
    """Per arm: exposed units, n / sum / sum of squares of each metric over units, the
    ratio metrics' sums and the engagement's pre-exposure (CUPED) sums, in one query.

    - ``engagement``: the unit's mean engagement over its outcome events;
    - ``cost_per_token``: the unit's total cost / total tokens over its generations;
    - ``latency_ms``: the unit's mean latency over its generations;
    - ``error_rate``: the unit's share of generations that failed.

    A unit without events of a kind has no value for that metric (it is not a zero).
    Ratio metrics (``RATIO_METRICS``) carry per arm the sums of the unit's numerator M and
    denominator D, of M², D² and M·D: ``engagement_per_post`` is M = the unit's total
    engagement, D = its outcome events; ``cost_per_token`` M = its cost, D = its tokens.
    The pre-period of ``engagement`` is the unit's mean engagement over outcome events
    before its first exposure in this experiment (and not before ``pre_period_since``).
    ``until`` counts only events that happened by then (the evidence at an earlier look).
    """
    dialect = engine.dialect.name
    values = _per_unit_values(tenant_id, experiment_key, until, dialect)
    pre_period = _pre_period(tenant_id, experiment_key, pre_period_since, dialect)
    # joined per unit (hundreds of rows), not per event
    per_unit = (
        select(
            values,
            pre_period.c.pre_engagement,
            pre_period.c.pre_engagement_sum,
            pre_period.c.pre_posts,
        )
        .outerjoin(pre_period, values.c.unit_id == pre_period.c.unit_id)
        .subquery("per_unit_with_pre")
    )
    u = per_unit.c
    columns: list[Any] = [u.arm, func.sum(u.exposed)]
    for metric in METRICS:
        value = u[metric]
        columns += [func.count(value), func.sum(value), func.sum(value * value)]
    for metric in RATIO_METRICS:
        m, d = u[f"{metric}_m"], u[f"{metric}_d"]
        columns += [func.count(d), func.sum(m), func.sum(m * m)]
        columns += [func.sum(d), func.sum(d * d), func.sum(m * d)]
    post, pre = u.engagement, func.coalesce(u.pre_engagement, 0.0)
    has_post = post.is_not(None)
    columns += [
        func.count(case((has_post, u.pre_engagement))),
        func.sum(case((has_post, pre))),
        func.sum(case((has_post, pre * pre))),
        func.sum(post * pre),
    ]
    columns += _ratio_pre_period_columns(u)
    query = select(*columns).group_by(u.arm).order_by(u.arm)
    with engine.connect() as connection:
        result = connection.execute(query).all()
    return [_arm_statistics(row) for row in result]


def _ratio_pre_period_columns(u: Any) -> list[Any]:
    """engagement_per_post before exposure (M0 = engagement, D0 = posts; 0 without history)
    over the units with the ratio after exposure: ΣM0, ΣM0², ΣD0, ΣD0² and the products."""
    m, d = u.engagement_per_post_m, u.engagement_per_post_d
    m0, d0 = func.coalesce(u.pre_engagement_sum, 0.0), func.coalesce(u.pre_posts, 0.0)
    has = d.is_not(None)
    return [
        func.count(case((has, u.pre_posts))),
        *(
            func.sum(case((has, value)))
            for value in (m0, m0 * m0, d0, d0 * d0, m * m0, d * d0, m0 * d0, m * d0, m0 * d)
        ),
    ]


def _per_unit_values(
    tenant_id: str, experiment_key: str, until: datetime | None, dialect: str
) -> Any:
    r, e = UnitRollup.__table__.c, OutcomeEvent.__table__.c
    rows = window_rows(
        ("arm", "unit_id"),
        rollups=[r.tenant_id == tenant_id, r.experiment_key == experiment_key],
        events=[e.experiment_key == experiment_key],
        dialect=dialect,
        end=until,
    ).c
    engaged, engagement = func.sum(rows.engaged), func.sum(rows.engagement_sum)
    tokens = func.sum(rows.tokens_sum)
    cost = case((func.sum(rows.cost_n) > 0, cast(func.sum(rows.cost_sum), Float)))
    priced = cost.is_not(None) & (tokens > 0)
    return (
        select(
            rows.arm,
            rows.unit_id,
            case((func.sum(rows.exposures) > 0, 1), else_=0).label("exposed"),
            _ratio(engagement, engaged).label("engagement"),
            (cost / func.nullif(tokens, 0)).label("cost_per_token"),
            _ratio(func.sum(rows.latency_sum), func.sum(rows.latency_n)).label("latency_ms"),
            _ratio(func.sum(rows.errors), func.sum(rows.generations)).label("error_rate"),
            case((engaged > 0, cast(engagement, Float))).label("engagement_per_post_m"),
            func.nullif(cast(func.sum(rows.outcomes), Float), 0.0).label("engagement_per_post_d"),
            case((priced, cost)).label("cost_per_token_m"),
            cast(case((priced, tokens)), Float).label("cost_per_token_d"),
        )
        .group_by(rows.arm, rows.unit_id)
        .subquery("per_unit")
    )


def _ratio(total: Any, count: Any) -> Any:
    """A mean from a sum and a count (NULL when nothing was counted, as ``avg`` gives)."""
    return cast(total, Float) / func.nullif(cast(count, Float), 0.0)


def _pre_period(tenant_id: str, experiment_key: str, since: datetime | None, dialect: str) -> Any:
    """Each exposed unit's engagement over its outcome events (of any experiment or none)
    before its first exposure in the experiment: whole hours from the rollups, the hour of
    the first exposure (and of ``since``) from the unit's events."""
    r, e = UnitRollup.__table__.c, OutcomeEvent.__table__.c
    first = (
        select(
            r.tenant_id,
            r.unit_id,
            func.min(r.first_exposure_at).label("first_ts"),
            func.min(r.bucket).label("first_bucket"),
        )
        .where(r.tenant_id == tenant_id, r.experiment_key == experiment_key, r.exposures > 0)
        .group_by(r.tenant_id, r.unit_id)
        .cte("first_exposure")
    )
    f = first.c
    whole = (
        select(*rollup_columns(("unit_id",)))
        .join(first, (r.tenant_id == f.tenant_id) & (r.unit_id == f.unit_id))
        .where(r.outcomes > 0, *whole_hours(r.bucket, start=since, end=f.first_bucket))
    )
    raw = edge_rows(
        ("unit_id",),
        first,
        lambda unit: [
            e.kind == "outcome",
            *edge_hours(
                e.ts, start=since, end=unit.first_ts, end_floor=unit.first_bucket, inclusive=False
            ),
        ],
        dialect=dialect,
    )
    rows = union_all(whole, raw).subquery("pre_rows").c
    engaged, engagement = func.sum(rows.engaged), func.sum(rows.engagement_sum)
    query = (
        select(
            rows.unit_id,
            _ratio(engagement, engaged).label("pre_engagement"),
            case((engaged > 0, cast(engagement, Float))).label("pre_engagement_sum"),
            cast(engaged, Float).label("pre_posts"),
        )
        .group_by(rows.unit_id)
        .having(func.sum(rows.outcomes) > 0)
    )
    # Computed once: as a plain subquery PostgreSQL may re-run it for every unit.
    return query.cte("pre_period").prefix_with("MATERIALIZED", dialect="postgresql")


def _arm_statistics(row: Any) -> ArmStatistics:
    values = list(row)
    metrics: dict[str, Moments] = {}
    for index, metric in enumerate(METRICS):
        n, total, squares = values[2 + 3 * index : 5 + 3 * index]
        metrics[metric] = Moments(int(n or 0), float(total or 0.0), float(squares or 0.0))
    at = 2 + 3 * len(METRICS)
    ratios: dict[str, RatioMoments] = {}
    for metric in RATIO_METRICS:
        n, *sums = values[at : at + 6]
        ratios[metric] = RatioMoments(int(n or 0), *(float(x or 0.0) for x in sums))
        at += 6
    units, pre_sum, pre_squares, products = values[at : at + 4]
    pre = PrePeriod(
        int(units or 0), float(pre_sum or 0.0), float(pre_squares or 0.0), float(products or 0.0)
    )
    ratio_pre_units, *ratio_sums = values[at + 4 : at + 14]
    ratio_pre = RatioPrePeriod(int(ratio_pre_units or 0), *(float(x or 0.0) for x in ratio_sums))
    return ArmStatistics(
        arm=str(values[0]),
        exposed_units=int(values[1] or 0),
        metrics=metrics,
        ratios=ratios,
        pre_period={"engagement": pre},
        ratio_pre_period={"engagement_per_post": ratio_pre},
    )
