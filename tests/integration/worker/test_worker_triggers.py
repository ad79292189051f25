"""Each trigger, read from the real store, starts a run at its threshold and not below it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import Engine
from worker_helpers import TENANT, RecordingActions, finish, quiet

from tuneloop.config import Settings
from tuneloop.domain.clock import ManualClock
from tuneloop.domain.runs import Trigger
from tuneloop.posts.schema import PostIn
from tuneloop.rollout.checks import model_label
from tuneloop.store.events import insert_events
from tuneloop.store.models_registry import record_model_version
from tuneloop.store.posts import upsert_posts
from tuneloop.worker.explain import explain
from tuneloop.worker.loop import Worker

NOW = datetime(2027, 3, 3, 12, tzinfo=UTC)  # a Wednesday: the weekly schedule is not due


def run_worker(engine: Engine, settings: Settings, clock: ManualClock) -> Worker:
    return Worker(engine, settings, RecordingActions(engine, clock), clock=clock, holder="w")


def triggers_of(w: Worker) -> list[Trigger]:
    assert isinstance(w.actions, RecordingActions)
    return [trigger for _, trigger, _ in w.actions.started]


def posts(first: int, count: int, *, engagement: float) -> list[PostIn]:
    return [
        PostIn(
            id=f"p{first + i}",
            hook=f"hook {first + i}",
            body=f"body {first + i}",
            engagement_rate=engagement,
            ts=NOW - timedelta(hours=1, minutes=i),
        )
        for i in range(count)
    ]


def test_data_starts_a_run_at_min_new_examples_and_not_below(
    engine: Engine, settings: Settings
) -> None:
    config = quiet(settings, min_new_examples=10)
    clock = ManualClock(NOW)
    w = run_worker(engine, config, clock)
    upsert_posts(engine, TENANT, posts(0, 9, engagement=0.2))
    upsert_posts(engine, TENANT, posts(100, 20, engagement=0.01))  # below the engagement bar
    w.tick()
    assert triggers_of(w) == []
    reading = explain(engine, config, w.actions, TENANT, now=NOW)["triggers"][0]
    assert reading == {
        "trigger": "data",
        "value": 9.0,
        "threshold": 10.0,
        "fires": False,
        "detail": "9 new qualifying posts < 10",
    }
    upsert_posts(engine, TENANT, posts(9, 1, engagement=0.2))
    w.tick()
    assert triggers_of(w) == [Trigger.DATA]


def test_freshness_starts_a_run_when_the_champion_is_older_than_the_limit(
    engine: Engine, settings: Settings
) -> None:
    config = quiet(settings, max_model_age_days=30)
    clock = ManualClock(NOW)
    w = run_worker(engine, config, clock)
    record_model_version(
        engine,
        TENANT,
        model_id="tuneloop-acme",
        version="1",
        base_model="tiny",
        status="champion",
        created_at=NOW - timedelta(days=30),
    )
    w.tick()
    assert triggers_of(w) == []
    clock.advance(timedelta(minutes=1))
    w.tick()
    assert triggers_of(w) == [Trigger.FRESHNESS]


def engagement_rows(
    label: str, rng: np.random.Generator, *, units: int, rate: float, start: datetime, key: str
) -> list[tuple[object, ...]]:
    rows = []
    for unit in range(units):
        ts = start + timedelta(minutes=unit % 600)
        engaged = float(rng.binomial(10, rate) / 10)
        rows.append(
            (TENANT, f"{key}-{unit}", None, f"{key}-u{unit}", None, label, None, None,
             "outcome", engaged, None, None, None, False, ts, ts)
        )  # fmt: skip
    return rows


def test_drift_starts_a_run_on_a_significant_drop_of_the_champions_engagement(
    engine: Engine, settings: Settings
) -> None:
    config = quiet(settings, drift_drop=0.15, drift_min_units=100)
    clock = ManualClock(NOW)
    w = run_worker(engine, config, clock)
    record_model_version(
        engine, TENANT, model_id="tuneloop-acme", version="3", base_model="tiny", status="champion"
    )
    label = model_label("tuneloop-acme", "3")
    rng = np.random.default_rng(11)
    baseline_start = NOW - timedelta(days=3)
    recent_start = NOW - timedelta(hours=12)
    insert_events(
        engine,
        engagement_rows(label, rng, units=3000, rate=0.10, start=baseline_start, key="b"),
    )
    # A small dip (5%) is not a drift: the interval does not lie below -15%.
    insert_events(
        engine,
        engagement_rows(label, rng, units=3000, rate=0.095, start=recent_start, key="r"),
    )
    w.tick()
    assert triggers_of(w) == []
    assert (
        "no significant drop"
        in explain(engine, config, w.actions, TENANT, now=NOW)["triggers"][1]["detail"]
    )
    # Later: the recent window (last 24 h) now holds a 45% drop.
    clock.advance(timedelta(hours=24))
    insert_events(
        engine,
        engagement_rows(
            label, rng, units=3000, rate=0.055, start=NOW + timedelta(hours=12), key="d"
        ),
    )
    w.tick()
    assert triggers_of(w) == [Trigger.DRIFT]


def test_the_cool_down_holds_a_trigger_back_after_a_run(engine: Engine, settings: Settings) -> None:
    config = quiet(settings, min_new_examples=1, cooldown_hours=6)
    clock = ManualClock(NOW)
    w = run_worker(engine, config, clock)
    upsert_posts(engine, TENANT, posts(0, 3, engagement=0.2))
    w.tick()
    assert isinstance(w.actions, RecordingActions)
    finish(engine, TENANT, w.actions.started[0][2])
    clock.advance(timedelta(hours=5, minutes=59))
    w.tick()
    why = explain(engine, config, w.actions, TENANT, now=clock.now())["reasons"]
    assert why[-1].startswith("cool-down: 0.0 h left")
    clock.advance(timedelta(minutes=1))
    w.tick()
    assert triggers_of(w) == [Trigger.DATA, Trigger.DATA]
