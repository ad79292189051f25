"""A run on the very data its champion (or the last candidate) was trained on ends before
training as ``no_new_data``, unless forced."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tuneloop.domain.runs import STEPS, RunStatus
from tuneloop.pipeline.context import RunContext, StepOutcome
from tuneloop.pipeline.outputs import CollectOutput
from tuneloop.pipeline.runner import StepFunction, execute
from tuneloop.pipeline.service import context_for, start_run
from tuneloop.pipeline.steps import collect_step
from tuneloop.posts.schema import PostIn
from tuneloop.store import runs as repo
from tuneloop.store.models_registry import record_model_version
from tuneloop.store.posts import upsert_posts
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts
from tuneloop.wiring import Container

TENANT = "acme"


def _steps(trained: list[str]) -> dict[str, StepFunction]:
    def after(ctx: RunContext, outputs: dict[str, Any]) -> StepOutcome:
        trained.append(ctx.run_id)  # got past collect
        return StepOutcome({}, final=RunStatus.SUCCEEDED)

    return {"collect": collect_step} | dict.fromkeys(STEPS[1:], after)


def _run(container: Container, trained: list[str], *, force: bool) -> tuple[str, RunStatus]:
    run = start_run(container.engine, container.settings, TENANT, force_run=force)
    ctx = context_for(container.engine, container.settings, run, services=container)
    return run.id, execute(ctx, _steps(trained), poll_seconds=0.05)


def test_the_same_dataset_is_not_trained_twice_unless_forced(container: Container) -> None:
    rows = generate_posts(SyntheticSpec(posts=1600, seed=3, weeks=1), now=datetime.now(UTC))
    upsert_posts(container.engine, TENANT, [PostIn.model_construct(**row) for row in rows])
    trained: list[str] = []
    first, status = _run(container, trained, force=False)
    assert status == RunStatus.SUCCEEDED and trained == [first]
    dataset = repo.get_run(container.engine, TENANT, first).dataset_id
    record_model_version(
        container.engine,
        TENANT,
        model_id=f"tuneloop-{TENANT}",
        version="1",
        run_id=first,
        dataset_id=dataset,
        base_model="tiny",
        status="champion",
    )

    second, status = _run(container, trained, force=False)
    assert status == RunStatus.NO_NEW_DATA and trained == [first]
    collected = CollectOutput.of(
        {s.name: s.output for s in repo.steps_of(container.engine, TENANT, second)}
    )
    assert collected.dataset_id == dataset
    assert collected.same_data_as == f"tuneloop-{TENANT}@1 (champion)"
    assert "no new data" in collected.message

    third, status = _run(container, trained, force=True)
    assert status == RunStatus.SUCCEEDED and trained == [first, third]
