"""A step that fails on the database leaves words in the run, not SQL and a sqlalche.me link."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, insert

from tuneloop.config import Settings
from tuneloop.domain.runs import STEPS, RunStatus
from tuneloop.pipeline.context import RunContext, StepOutcome
from tuneloop.pipeline.runner import execute
from tuneloop.pipeline.service import context_for, start_run
from tuneloop.store import runs as repo
from tuneloop.store.models import Post
from tuneloop.store.types import utcnow
from tuneloop.wiring import build_container


def _duplicate_post(ctx: RunContext, outputs: dict[str, Any]) -> StepOutcome:
    row = {"tenant_id": ctx.tenant_id, "id": "p1", "hook": "h", "body": "b", "ts": utcnow()}
    with ctx.engine.begin() as connection:
        connection.execute(insert(Post), [row, row])  # the primary key refuses the second
    return StepOutcome({})


def test_a_database_failure_is_told_in_words(
    engine: Engine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    ok = lambda ctx, outputs: StepOutcome({})  # noqa: E731
    steps = dict.fromkeys(STEPS, ok) | {"collect": _duplicate_post}
    run = start_run(engine, settings, "acme")

    services = build_container(settings, engine=engine)
    status = execute(
        context_for(engine, settings, run, services=services), steps, poll_seconds=0.05
    )

    assert status == RunStatus.FAILED
    error = repo.get_run(engine, "acme", run.id).error or ""
    assert error.startswith("collect: the database refused a record that conflicts"), error
    assert "constraint" in error and "see the log" in error
    assert "sqlalche.me" not in error and "INSERT" not in error
    assert "INSERT INTO posts" in caplog.text  # the detail is logged
