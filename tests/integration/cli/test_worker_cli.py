"""``tuneloop schedule show`` (table and JSON) and ``tuneloop worker --once``, on the real store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from tuneloop.cli.main import app
from tuneloop.config import Settings
from tuneloop.posts.schema import PostIn
from tuneloop.store import leases
from tuneloop.store import runs as runs_repo
from tuneloop.store.posts import upsert_posts
from tuneloop.store.schedules import set_cron

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_schedule_show_lists_each_tenant_its_next_fire_triggers_and_why(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNELOOP_TRIGGERS__MIN_NEW_EXAMPLES", "3")
    monkeypatch.setenv("TUNELOOP_PIPELINE__TIMEZONE", "Europe/Berlin")
    now = datetime.now(UTC)
    set_cron(engine, "acme", "30 4 * * 1", now=now)
    upsert_posts(
        engine,
        "acme",
        [
            PostIn(id=f"p{i}", hook="h", body="b", engagement_rate=0.5, ts=now - timedelta(hours=i))
            for i in range(1, 4)
        ],
    )
    rows = {row["tenant"]: row for row in json.loads(invoke("schedule", "show", "--json"))}
    assert set(rows) == {"acme", "default"}
    acme, default = rows["acme"], rows["default"]
    assert (acme["cron"], acme["timezone"]) == ("30 4 * * 1", "Europe/Berlin")
    assert default["cron"] == "0 2 * * 0"
    assert datetime.fromisoformat(acme["next_fire"]) > now
    data = acme["triggers"][0]
    assert data == {
        "trigger": "data",
        "value": 3.0,
        "threshold": 3.0,
        "fires": True,
        "detail": "3 new qualifying posts >= 3",
    }
    assert acme["start"] is True and acme["trigger"] == "data"
    assert default["start"] is False
    assert default["reasons"] == ["no trigger holds and the schedule is not due"]
    table = invoke("schedule", "show")
    assert "acme" in table and "30 4 * * 1" in table and "(fires)" in table


def test_worker_once_takes_the_lease_and_starts_what_is_due(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNELOOP_TRIGGERS__MIN_NEW_EXAMPLES", "1")
    upsert_posts(
        engine,
        "default",
        [PostIn(id="p1", hook="h", body="b", engagement_rate=0.5, ts=datetime.now(UTC))],
    )
    output = invoke("worker", "--once")
    assert "leader: True" in output and "data ft-pipeline-" in output
    lease = leases.read_lease(engine)
    assert lease is not None and lease.last_tick_at is not None
    runs, total = runs_repo.list_runs(engine, "default")
    assert total == 1 and runs[0].trigger == "data"
    assert runs[0].status == "not_enough_data"  # --once waited for the run it started
