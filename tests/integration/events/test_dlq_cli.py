"""``tuneloop consume events --drain`` and ``tuneloop dlq list|show|replay|purge`` end to end."""

from __future__ import annotations

import json

from sqlalchemy import Engine
from typer.testing import CliRunner

from tuneloop.cli.main import app
from tuneloop.config import Settings
from tuneloop.domain.experiments import ArmSpec
from tuneloop.events.factory import stream_for
from tuneloop.experiments.service import create_experiment
from tuneloop.store.events import count_events

runner = CliRunner()
ARMS = [ArmSpec("baseline", "gpt-4o-mini", "1", 0.5), ArmSpec("candidate", "ft:x", "2", 0.5)]
# Another pair of models: a running test already compares ARMS' (one test per set of models).
LATE_ARMS = [ArmSpec("baseline", "gpt-4o-mini", "1", 0.5), ArmSpec("candidate", "ft:y", "3", 0.5)]


def _event(key: str, **fields: object) -> dict[str, object]:
    return {
        "idempotency_key": key,
        "kind": "outcome",
        "unit_id": "u-1",
        "experiment_key": "ab-test-cli",
        "arm": "candidate",
        "engagement": 0.1,
        "ts": "2026-12-05T12:00:00Z",
    } | fields


def test_dead_letters_from_the_command_line(settings: Settings, engine: Engine) -> None:
    stream = stream_for(settings, engine, None)  # what the commands open
    stream.append("acme", [_event("ok-1"), _event("bad-1", engagement=-1)])
    stream.append("acme", [_event("late-1", experiment_key="ab-test-late")])
    create_experiment(engine, "acme", arms=ARMS, key="ab-test-cli")
    env = {"TUNELOOP_EVENTS__MAX_DELIVERIES": "1"}  # dead-letter at the first failure
    drained = runner.invoke(app, ["consume", "events", "--drain"], env=env)
    assert drained.exit_code == 0, drained.output
    assert "written 1" in drained.output and "dead-lettered 2" in drained.output

    listed = runner.invoke(app, ["dlq", "list", "--json"])
    assert json.loads(listed.output)["dead_letters"] == {
        "validation": 1,
        "unknown_reference": 1,
        "processing": 0,
    }
    shown = runner.invoke(app, ["dlq", "show", "validation"])
    [letter] = [json.loads(line) for line in shown.output.splitlines()]
    assert letter["event"]["idempotency_key"] == "bad-1" and "engagement" in letter["error"]
    assert letter["source"] == "db:event_stream" and letter["attempts"] == 1
    stream.close()

    create_experiment(engine, "acme", arms=LATE_ARMS, key="ab-test-late")  # the fix
    replayed = runner.invoke(app, ["dlq", "replay", "unknown_reference"])
    assert "appended 1" in replayed.output, replayed.output
    refused = runner.invoke(app, ["dlq", "replay", "validation"])
    assert "refused again 1" in refused.output, refused.output  # still malformed: kept
    assert runner.invoke(app, ["consume", "events", "--drain"]).exit_code == 0
    assert count_events(engine, "acme") == 2
    purged = runner.invoke(app, ["dlq", "purge", "validation", "--yes"])
    assert "purged 1" in purged.output
    assert json.loads(runner.invoke(app, ["dlq", "list", "--json"]).output)["dead_letters"] == {
        "validation": 0,
        "unknown_reference": 0,
        "processing": 0,
    }
