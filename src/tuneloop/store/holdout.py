"""Per-unit engagement of a tenant, streamed: what the holdout report classifies and sums."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Engine, Float, cast, func, select

from tuneloop.store.experiment_models import OutcomeEvent


def unit_engagement(
    engine: Engine,
    tenant_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    chunk_size: int = 5000,
) -> Iterator[list[tuple[str, float]]]:
    """Each unit's mean engagement over its outcome events, in chunks of ``chunk_size``.

    Every outcome of the tenant counts, in or out of an experiment: the holdout compares
    what the loop's models earned for everyone else with what the reference earned for
    the holdout, over the same period. A unit is one value (its mean), as in the A/B
    tests, so a prolific unit does not pass for many independent observations.
    """
    e = OutcomeEvent.__table__.c
    where = [e.tenant_id == tenant_id, e.kind == "outcome", e.engagement.is_not(None)]
    if since is not None:
        where.append(e.ts >= since)
    if until is not None:
        where.append(e.ts <= until)
    statement = (
        select(e.unit_id, cast(func.avg(e.engagement), Float))
        .where(*where)
        .group_by(e.unit_id)
        .order_by(e.unit_id)
    )
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=chunk_size).execute(
            statement
        )
        for partition in result.partitions(chunk_size):
            yield [(str(unit), float(mean)) for unit, mean in partition]
