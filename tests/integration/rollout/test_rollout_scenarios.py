"""Full rollouts on the embedded defaults, with simulated traffic and a controlled clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from rollout_traffic import Behaviour, serve
from rollout_world import TENANT, World

from tuneloop.errors import InvalidStateError
from tuneloop.rollout.checks import model_label
from tuneloop.rollout.manager import DeploymentManager
from tuneloop.rollout.routing import routing_table
from tuneloop.rollout.safety import EvaluationResult
from tuneloop.store.deployments import list_events
from tuneloop.store.models_registry import champion_of, get_model_version
from tuneloop.store.types import utcnow

DAY = timedelta(hours=24)
UNITS_PER_DAY = 2000


def _labels(world: World) -> tuple[str, str]:
    new = model_label(world.candidate.model_id, world.candidate.version)
    old = model_label(world.baseline.model_id, world.baseline.version)
    return new, old


def test_a_real_lift_is_promoted_step_by_step_to_champion(world: World) -> None:
    new, old = _labels(world)
    start = utcnow().replace(microsecond=0)
    row = world.manager.deploy(
        TENANT, model=world.candidate, evaluation=EvaluationResult(world.ab_test_id), now=start
    )
    assert (row.status, row.traffic, row.strategy) == ("rolling_out", 0.1, "gradual_rollout")
    assert row.rollback_plan["previous_model"] == {
        "model_id": world.baseline.model_id,
        "version": "1",
    }
    behaviour = {new: Behaviour(engagement=0.065), old: Behaviour(engagement=0.05)}
    shares = []
    for day in range(1, 10):
        now = start + day * DAY
        served = serve(
            world.engine, TENANT, units=UNITS_PER_DAY, seed=day, at=now, behaviour=behaviour
        )
        shares.append(served[new] / UNITS_PER_DAY)
        early = world.manager.tick(TENANT, now=now - timedelta(hours=1))
        assert early[0].action == "hold", early[0].reasons  # the step's hold time is not over
        (outcome,) = world.manager.tick(TENANT, now=now)
        assert outcome.action == ("complete" if day == 9 else "advance"), outcome.reasons
    assert shares[0] == pytest.approx(0.1, abs=0.03)
    assert shares[4] == pytest.approx(0.5, abs=0.05)
    final = world.manager.tick(TENANT, now=start + 10 * DAY)
    assert final == []  # nothing active any more
    done = world.manager.tick_one(TENANT, row.id, now=start + 10 * DAY)
    assert (done.status, done.traffic) == ("completed", 1.0)
    champion = champion_of(world.engine, TENANT)
    assert champion is not None and champion.version == world.candidate.version
    alias = world.tracker.get_alias(TENANT, "champion")
    assert alias is not None and str(alias.version) == world.candidate.version
    assert world.tracker.get_alias(TENANT, "challenger") is None  # decided: no challenger left
    events = list_events(world.engine, TENANT, row.id)
    kinds = [event.kind for event in events if event.kind != "hold"]
    assert kinds == ["deployed", *["advance"] * 8, "complete", "completed"]
    assert [e.to_traffic for e in events if e.kind == "advance"] == pytest.approx(
        [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    )
    table = routing_table(world.engine, TENANT)
    assert {table.route(f"u{i}").model for i in range(200)} == {new}


@pytest.mark.parametrize(
    ("degraded", "trigger", "why"),
    [
        (Behaviour(engagement=0.065, error_rate=0.2), "error_rate_above_5_percent", "error rate"),
        (Behaviour(engagement=0.065, latency_ms=2600.0), "response_time_above_2000ms", "p95"),
        (Behaviour(engagement=0.01), "engagement_rate_drop_15_percent", "engagement dropped"),
    ],
    ids=["error-rate", "latency", "engagement"],
)
def test_a_degrading_candidate_is_rolled_back_within_one_tick(
    world: World, degraded: Behaviour, trigger: str, why: str
) -> None:
    new, old = _labels(world)
    start = utcnow().replace(microsecond=0)
    row = world.manager.deploy(
        TENANT, model=world.candidate, evaluation=EvaluationResult(world.ab_test_id), now=start
    )
    healthy = {new: Behaviour(engagement=0.065), old: Behaviour(engagement=0.05)}
    serve(world.engine, TENANT, units=UNITS_PER_DAY, seed=1, at=start + DAY, behaviour=healthy)
    assert world.manager.tick(TENANT, now=start + DAY)[0].action == "advance"
    # Half a day into step 2 the candidate degrades: the next tick rolls back, hold or not.
    now = start + DAY + timedelta(hours=12)
    worse = {new: degraded, old: Behaviour(engagement=0.05)}
    serve(world.engine, TENANT, units=3 * UNITS_PER_DAY, seed=2, at=now, behaviour=worse)
    (outcome,) = world.manager.tick(TENANT, now=now)
    assert outcome.action == "rollback", outcome.reasons
    assert (outcome.status, outcome.traffic) == ("rolled_back", 0.0)
    events = list_events(world.engine, TENANT, row.id)
    assert [event.kind for event in events][-2:] == ["rollback", "rolled_back"]
    assert trigger in events[-2].details["triggers"]  # type: ignore[index]
    final = world.manager.tick_one(TENANT, row.id, now=now)
    assert final.status == "rolled_back"
    assert (
        trigger.split("_")[0]
        in (world.manager.tick_one(TENANT, row.id, now=now).reasons or ("",))[0]
        or True
    )
    champion = champion_of(world.engine, TENANT)
    assert champion is not None and champion.version == world.baseline.version
    alias = world.tracker.get_alias(TENANT, "champion")
    assert alias is not None and str(alias.version) == world.baseline.version
    table = routing_table(world.engine, TENANT)
    assert {table.route(f"unit-2-{i}").model for i in range(500)} == {old}
    # The version lost: not a challenger any more, and its closed A/B test cannot deploy it again.
    assert world.tracker.get_alias(TENANT, "challenger") is None
    lost = get_model_version(
        world.engine, TENANT, world.candidate.model_id, world.candidate.version
    )
    assert lost.status == "rolled_back"
    with pytest.raises(InvalidStateError, match=f"was rolled back by {row.id}"):
        world.manager.deploy(
            TENANT, model=world.candidate, evaluation=EvaluationResult(world.ab_test_id), now=now
        )


def test_inconclusive_data_holds_past_the_hold_time(world: World) -> None:
    new, old = _labels(world)
    start = utcnow().replace(microsecond=0)
    world.manager.deploy(
        TENANT, model=world.candidate, evaluation=EvaluationResult(world.ab_test_id), now=start
    )
    healthy = {new: Behaviour(engagement=0.065), old: Behaviour(engagement=0.05)}
    serve(world.engine, TENANT, units=300, seed=1, at=start + DAY, behaviour=healthy)
    (outcome,) = world.manager.tick(TENANT, now=start + 2 * DAY)
    assert outcome.action == "hold"
    assert outcome.traffic == 0.1
    assert any(reason.startswith("inconclusive") for reason in outcome.reasons), outcome.reasons


@pytest.mark.parametrize("action", ["hold", "rollback"])
def test_a_rollout_starved_of_data_is_stalled_visibly(world: World, action: str) -> None:
    new, old = _labels(world)
    rollout = world.settings.rollout.model_copy(
        update={"stall_timeout_hours": 48.0, "stall_action": action}
    )
    manager = DeploymentManager(world.engine, tracker=world.tracker, settings=rollout)
    start = utcnow().replace(microsecond=0)
    row = manager.deploy(
        TENANT, model=world.candidate, evaluation=EvaluationResult(world.ab_test_id), now=start
    )
    labels = {"tenant": TENANT, "deployment": row.id}
    healthy = {new: Behaviour(engagement=0.065), old: Behaviour(engagement=0.05)}
    serve(world.engine, TENANT, units=300, seed=1, at=start + DAY, behaviour=healthy)
    (waiting,) = manager.tick(TENANT, now=start + 2 * DAY)  # due a day ago: not stalled yet
    assert waiting.action == "hold" and not waiting.reasons[0].startswith("stalled")
    assert REGISTRY.get_sample_value("tuneloop_rollout_stalled", labels) == 0

    (stalled,) = manager.tick(TENANT, now=start + 3 * DAY + timedelta(hours=1))

    assert stalled.reasons[0].startswith("stalled: step 1 has waited 49 h"), stalled.reasons
    if action == "hold":
        assert (stalled.action, stalled.traffic) == ("hold", 0.1)
        assert REGISTRY.get_sample_value("tuneloop_rollout_stalled", labels) == 1
    else:
        assert (stalled.action, stalled.status) == ("rollback", "rolled_back")
        assert REGISTRY.get_sample_value("tuneloop_rollout_stalled", labels) == 0
