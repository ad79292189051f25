"""The worker over the application layer: a scheduled run executes in the background, once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from worker_helpers import quiet

from tuneloop.config import Settings
from tuneloop.domain.clock import ManualClock
from tuneloop.domain.runs import ACTIVE, RunStatus
from tuneloop.domain.tenants import DEFAULT_TENANT
from tuneloop.store import runs as runs_repo
from tuneloop.store.pipeline_models import PipelineRun
from tuneloop.wiring import build_container
from tuneloop.worker.actions import AppActions
from tuneloop.worker.loop import Worker

SATURDAY = datetime(2027, 3, 6, 12, tzinfo=UTC)
SUNDAY_2AM = datetime(2027, 3, 7, 2, tzinfo=UTC)


def wait_finished(engine: Engine, run_id: str, timeout: float = 60.0) -> PipelineRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = runs_repo.get_run(engine, DEFAULT_TENANT, run_id)
        if run.status not in {s.value for s in ACTIVE}:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still {run.status} after {timeout}s")


def test_a_worker_tick_starts_the_scheduled_run_once_and_it_executes(
    engine: Engine, settings: Settings
) -> None:
    config = quiet(settings)
    clock = ManualClock(SATURDAY)
    actions = AppActions(build_container(config, clock=clock, engine=engine))
    worker = Worker(engine, config, actions, clock=clock, holder="w")
    try:
        worker.tick()
        clock.set(SUNDAY_2AM)
        trigger, run_id = worker.tick().started[DEFAULT_TENANT].split()
        assert trigger == "schedule"
        run = wait_finished(engine, run_id)
        assert run.status == RunStatus.NOT_ENOUGH_DATA  # no posts: collect ends it, for real
        assert run.trigger == "schedule" and run.created_at == SUNDAY_2AM
        for hours in (1, 30):
            clock.advance(timedelta(hours=hours))
            assert worker.tick().started == {}
        assert runs_repo.list_runs(engine, DEFAULT_TENANT)[1] == 1
    finally:
        actions.close()


def test_advance_continues_a_run_that_nobody_executes(engine: Engine, settings: Settings) -> None:
    clock = ManualClock(SATURDAY)
    actions = AppActions(build_container(quiet(settings), clock=clock, engine=engine))
    created = clock.now() - timedelta(seconds=30)
    orphan = runs_repo.create_run(engine, DEFAULT_TENANT, trigger="manual", config={}, now=created)
    try:
        assert actions.active_run_id(DEFAULT_TENANT) == orphan.id
        assert actions.advance_runs() == 0  # just created: its starter is about to launch it
        runs_repo.update_run(
            engine, DEFAULT_TENANT, orphan.id, created_at=created - timedelta(minutes=1)
        )
        assert actions.advance_runs() == 1
        assert wait_finished(engine, orphan.id).status == RunStatus.NOT_ENOUGH_DATA
        assert actions.advance_runs() == 0
        assert actions.tick_rollouts() == 0  # no active deployment
    finally:
        actions.close()
