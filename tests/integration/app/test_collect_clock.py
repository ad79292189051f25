"""A run collects the posts its clock sees, the very ones the data trigger counted.

On a manual or scaled clock (tests, the demo, ``worker.clock_speed``) the trigger reads
posts at the worker's time; collection used to read them at the wall clock's, so a run the
trigger started for fresh posts could find none of them and end ``not_enough_data``.
"""

from __future__ import annotations

from tuneloop.collect.service import new_qualifying_since_last
from tuneloop.domain.clock import ManualClock
from tuneloop.domain.runs import RunStatus
from tuneloop.pipeline.service import context_for, start_run
from tuneloop.pipeline.steps import collect_step
from tuneloop.posts.schema import PostIn
from tuneloop.store.posts import upsert_posts
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts
from tuneloop.wiring import Container

TENANT = "acme"


def test_a_run_collects_the_posts_the_data_trigger_counted_at_the_same_clock(
    container: Container, clock: ManualClock
) -> None:
    # The clock stands months before the wall clock; the posts are from its last week.
    rows = generate_posts(SyntheticSpec(posts=400, seed=5, weeks=1), now=clock.now())
    upsert_posts(container.engine, TENANT, [PostIn.model_construct(**row) for row in rows])
    pipeline = container.settings.pipeline.model_copy(update={"training_data_threshold": 30})
    settings = container.settings.model_copy(update={"pipeline": pipeline})
    counted = new_qualifying_since_last(container.engine, settings, TENANT, now=clock.now())
    assert counted >= 30

    run = start_run(container.engine, settings, TENANT, trigger="data", now=clock.now())
    ctx = context_for(container.engine, settings, run, services=container)
    outcome = collect_step(ctx, {})
    assert outcome.final != RunStatus.NOT_ENOUGH_DATA, outcome.output
    assert outcome.output["status"] == "ok" and outcome.output["qualifying"] == counted
