"""Deploying: safety checks, strategies, idempotent and concurrent ticks, manual actions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from rollout_traffic import Behaviour, serve
from rollout_world import TENANT, World

from tuneloop.errors import ConflictError, InvalidStateError, NotFoundError
from tuneloop.experiments.service import (
    ModelRef,
    create_experiment,
    get_experiment,
    start_experiment,
    stop_experiment,
    two_arms,
)
from tuneloop.rollout.checks import model_label
from tuneloop.rollout.policy import RolloutConfig
from tuneloop.rollout.routing import route
from tuneloop.rollout.safety import EvaluationResult
from tuneloop.store.deployments import get_deployment, list_events
from tuneloop.store.models_registry import champion_of
from tuneloop.store.types import utcnow

DAY = timedelta(hours=24)


def _deploy(world: World, **kwargs: object):  # type: ignore[no-untyped-def]
    return world.manager.deploy(
        TENANT, model=world.candidate, evaluation=EvaluationResult(world.ab_test_id), **kwargs
    )


def _healthy(world: World) -> dict[str, Behaviour]:
    new = model_label(world.candidate.model_id, world.candidate.version)
    return {new: Behaviour(engagement=0.065)}


def test_safety_checks_refuse_what_is_not_safe(world: World) -> None:
    with pytest.raises(InvalidStateError, match="does not recommend"):
        world.manager.deploy(
            TENANT,
            model=world.candidate,
            evaluation=EvaluationResult(world.ab_test_id, recommendation="reject"),
        )
    with pytest.raises(InvalidStateError, match="recommends"):
        world.manager.deploy(
            TENANT, model=world.baseline, evaluation=EvaluationResult(world.ab_test_id)
        )
    with pytest.raises(NotFoundError, match="version 9 not found"):
        world.manager.deploy(
            TENANT,
            model=ModelRef(world.candidate.model_id, "9"),
            evaluation=EvaluationResult(world.ab_test_id),
        )


def test_deploy_records_the_plan_closes_the_experiment_and_refuses_a_second(world: World) -> None:
    row = _deploy(world)
    assert row.id.startswith("deploy-") and row.id.endswith("-001")
    assert [c["name"] for c in row.safety_checks] == ["reachable", "baseline", "evaluation"]
    assert all(c["passed"] for c in row.safety_checks)
    assert row.rollback_plan["triggers"][0] == "engagement_rate_drop_15_percent"
    assert get_experiment(world.engine, TENANT, world.ab_test_id).decision == "promote"
    with pytest.raises(ConflictError):
        _deploy(world)


def test_immediate_promotes_at_once_and_a_manual_rollback_restores_champion(world: World) -> None:
    row = _deploy(world, strategy="immediate")
    assert (row.status, row.traffic) == ("completed", 1.0)
    assert champion_of(world.engine, TENANT).version == world.candidate.version  # type: ignore[union-attr]
    back = world.manager.rollback(TENANT, row.id, reason="bad vibes")
    assert (back.status, back.traffic, back.reason) == ("rolled_back", 0.0, "bad vibes")
    alias = world.tracker.get_alias(TENANT, "champion")
    assert alias is not None and str(alias.version) == world.baseline.version
    assert route(world.engine, TENANT, "anyone").version == world.baseline.version


def test_a_canary_holds_until_promoted_by_hand(world: World) -> None:
    start = utcnow()
    row = _deploy(
        world, strategy="canary", rollout_config=RolloutConfig(initial_traffic=0.2), now=start
    )
    serve(world.engine, TENANT, units=2000, seed=1, at=start + DAY, behaviour=_healthy(world))
    (outcome,) = world.manager.tick(TENANT, now=start + 3 * DAY)
    assert (outcome.action, outcome.traffic) == ("hold", 0.2)
    done = world.manager.promote(TENANT, row.id, now=start + 3 * DAY)
    assert (done.status, done.traffic) == ("completed", 1.0)
    assert champion_of(world.engine, TENANT).version == world.candidate.version  # type: ignore[union-attr]


def test_ticks_are_idempotent_and_concurrent_ticks_advance_once(world: World) -> None:
    start = utcnow()
    row = _deploy(world, now=start)
    serve(world.engine, TENANT, units=2000, seed=1, at=start + DAY, behaviour=_healthy(world))
    now = start + DAY
    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(lambda _: world.manager.tick(TENANT, now=now), range(6)))
    actions = sorted(o.action for found in outcomes for o in found)
    assert actions.count("advance") == 1, actions
    again = world.manager.tick(TENANT, now=now)
    assert again[0].action == "hold"
    assert get_deployment(world.engine, TENANT, row.id).traffic == pytest.approx(0.2)
    kinds = [e.kind for e in list_events(world.engine, TENANT, row.id)]
    assert kinds.count("advance") == 1


def test_routing_is_sticky_and_grows_only_from_the_previous_model(world: World) -> None:
    start = utcnow()
    _deploy(world, now=start)
    units = [f"user-{i}" for i in range(2000)]
    before = {u: route(world.engine, TENANT, u) for u in units[:400]}
    assert {r.source for r in before.values()} == {"deployment"}
    serve(world.engine, TENANT, units=2000, seed=1, at=start + DAY, behaviour=_healthy(world))
    world.manager.tick(TENANT, now=start + DAY)
    after = {u: route(world.engine, TENANT, u) for u in units[:400]}
    moved = [u for u in before if before[u].arm != after[u].arm]
    assert moved and all(before[u].arm == "previous" for u in moved)
    assert all(after[u] == before[u] for u in before if before[u].arm == "new")


def test_a_rollout_and_an_ab_test_never_share_the_traffic(world: World) -> None:
    arms = two_arms(world.baseline, ModelRef("gpt-4o-mini", "1"), 0.5)  # another pair
    other = create_experiment(world.engine, TENANT, arms=arms, key="ab-other", start=False)
    start_experiment(world.engine, TENANT, "ab-other")
    with pytest.raises(ConflictError, match="ab-other is running"):
        _deploy(world)  # the other test would keep every unit from the rollout
    stop_experiment(world.engine, TENANT, other.key)
    row = _deploy(world)
    with pytest.raises(ConflictError, match=f"{row.id} is rolling out"):
        create_experiment(world.engine, TENANT, arms=arms[::-1], key="ab-during")
    with pytest.raises(ConflictError, match="owns its live traffic"):
        start_experiment(world.engine, TENANT, "ab-other")
    new = model_label(world.candidate.model_id, world.candidate.version)
    served = {route(world.engine, TENANT, f"u{i}").model for i in range(200)}
    assert new in served  # the rollout gets its share
