"""Experiments in the database: migration, keys, tenant scoping, lifecycle, analysis, SRM."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, create_engine, inspect

from tuneloop.app.simulation import simulate_traffic
from tuneloop.domain.experiments import ArmSpec, SuccessCriteria
from tuneloop.errors import ConflictError, InvalidInputError, InvalidStateError, NotFoundError
from tuneloop.events.ingest import ingest_events
from tuneloop.experiments import service
from tuneloop.experiments.service import ModelRef, two_arms
from tuneloop.store.migrate import downgrade, upgrade
from tuneloop.store.types import utcnow
from tuneloop.synthetic.traffic import TrafficSpec, generate_traffic

DAY = datetime(2025, 1, 2, 9, 0, tzinfo=UTC)
ARMS = two_arms(ModelRef("gpt-4o-mini", "1"), ModelRef("ft:gpt-4o-mini:acme::7", "2"), 0.5)


def test_migration_0002_goes_down_and_up_again(engine: Engine) -> None:
    assert {"experiments", "outcome_events"} <= set(inspect(engine).get_table_names())
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("outcome_events")}
    assert "ix_outcome_events_experiment" in indexes
    assert inspect(engine).get_pk_constraint("outcome_events")["constrained_columns"] == [
        "tenant_id",
        "idempotency_key",
    ]
    if engine.dialect.name == "postgresql":
        columns = {c["name"]: c["type"] for c in inspect(engine).get_columns("outcome_events")}
        assert columns["idempotency_key"].collation == "C"  # type: ignore[attr-defined]
        assert columns["unit_id"].collation is None  # type: ignore[attr-defined]
    downgrade(engine, "0001")
    assert not {"experiments", "outcome_events"} & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert {"experiments", "outcome_events"} <= set(inspect(engine).get_table_names())


def test_keys_are_numbered_per_day_and_tenant(engine: Engine) -> None:
    first = service.create_experiment(engine, "acme", arms=ARMS, now=DAY)
    service.stop_experiment(engine, "acme", first.key)  # one running test per pair of models
    second = service.create_experiment(engine, "acme", arms=ARMS, now=DAY + timedelta(hours=1))
    other = service.create_experiment(engine, "globex", arms=ARMS, now=DAY)
    service.stop_experiment(engine, "acme", second.key)
    next_day = service.create_experiment(engine, "acme", arms=ARMS, now=DAY + timedelta(days=1))
    assert [first.key, second.key, other.key, next_day.key] == [
        "ab-test-20250102-001",
        "ab-test-20250102-002",
        "ab-test-20250102-001",
        "ab-test-20250103-001",
    ]
    with pytest.raises(ConflictError):
        service.create_experiment(engine, "acme", arms=ARMS, key=first.key)


def test_create_stores_the_documented_fields(engine: Engine) -> None:
    arms = two_arms(ModelRef("base"), ModelRef("cand", "3"), 0.1)
    row = service.create_experiment(
        engine,
        "acme",
        arms=arms,
        duration_hours=48,
        now=DAY,
        success_criteria=SuccessCriteria(min_engagement_lift=0.2),
    )
    found = service.describe_experiment(service.get_experiment(engine, "acme", row.key))
    assert found["status"] == "running"
    assert found["traffic_allocation"] == {"baseline": 0.9, "candidate": 0.1}
    assert found["candidate_model"] == {"model_id": "cand", "version": "3"}
    assert found["success_criteria"] == {
        "min_engagement_lift": 0.2,
        "min_cost_efficiency_gain": 0.1,
        "significance_threshold": 0.05,
        "stats_engine": "frequentist",  # how the statistics judge it (issue 14)
        "min_chance_to_win": 0.95,
        "max_risk": 0.01,
        "correction": "none",
    }
    assert found["start_time"] == DAY.isoformat()
    assert found["estimated_end_time"] == (DAY + timedelta(hours=48)).isoformat()


def test_lookups_are_scoped_by_tenant(engine: Engine) -> None:
    row = service.create_experiment(engine, "acme", arms=ARMS)
    with pytest.raises(NotFoundError, match="not found for tenant 'globex'"):
        service.get_experiment(engine, "globex", row.key)
    with pytest.raises(NotFoundError):
        service.stop_experiment(engine, "globex", row.key)
    assert service.list_experiments(engine, "globex") == []
    assert [r.key for r in service.list_experiments(engine, "acme")] == [row.key]


def test_lifecycle_draft_running_stopped_decided(engine: Engine) -> None:
    row = service.create_experiment(engine, "acme", arms=ARMS, start=False)
    assert (row.status, row.started_at) == ("draft", None)
    assert service.start_experiment(engine, "acme", row.key, now=DAY).status == "running"
    with pytest.raises(InvalidStateError, match="is running; it cannot become running"):
        service.start_experiment(engine, "acme", row.key)
    stopped = service.stop_experiment(engine, "acme", row.key, now=DAY + timedelta(hours=5))
    assert (stopped.status, stopped.ended_at) == ("stopped", DAY + timedelta(hours=5))
    with pytest.raises(InvalidStateError):
        service.stop_experiment(engine, "acme", row.key)
    with pytest.raises(InvalidInputError):
        service.record_decision(engine, "acme", row.key, recommendation="continue", reasons=[])
    decided = service.record_decision(
        engine, "acme", row.key, recommendation="reject", reasons=["no lift"]
    )
    assert (decided.status, decided.decision, decided.decision_reasons) == (
        "decided",
        "reject",
        ["no lift"],
    )
    assert service.get_experiment(engine, "acme", row.key).status == "decided"
    with pytest.raises(InvalidStateError, match="final"):
        service.stop_experiment(engine, "acme", row.key)
    assert [r.key for r in service.list_experiments(engine, "acme", status="decided")] == [row.key]


@pytest.mark.parametrize(
    "arms",
    [
        [ArmSpec("baseline", "m", "1", 1.0)],
        [ArmSpec("baseline", "m", "1", 1.0), ArmSpec("candidate", "c", "1", 0.0)],
        [ArmSpec("baseline", "m", "1", 0.5), ArmSpec("candidate", "c", "1", 0.4)],
        [
            ArmSpec("baseline", "m", "1", 0.1),
            ArmSpec("a", "c", "1", 0.6),
            ArmSpec("b", "d", "1", 0.3),
        ],
    ],
)
def test_bad_arms_are_refused_before_touching_the_database(arms: list[ArmSpec]) -> None:
    untouched = create_engine("sqlite://")  # no tables: any query would fail loudly
    with pytest.raises(InvalidInputError):
        service.create_experiment(untouched, "acme", arms=arms)


def test_model_refs_parse_versions_and_colons() -> None:
    assert ModelRef.parse("ft:gpt-4o-mini:acme::abc@7") == ModelRef("ft:gpt-4o-mini:acme::abc", "7")
    assert ModelRef.parse("gpt-4o-mini") == ModelRef("gpt-4o-mini", "1")
    with pytest.raises(InvalidInputError):
        ModelRef.parse("model@")


def test_analysis_finds_the_lift_and_promotes_a_clear_winner(engine: Engine) -> None:
    row = service.create_experiment(engine, "acme", arms=ARMS, duration_hours=24)
    spec = TrafficSpec(row.key, (), units=3000, lift=0.4, cost_change=-0.3, seed=11)
    report = simulate_traffic(engine, "acme", row.key, spec=spec)
    assert report.rejected == 0
    analysis = service.analyze_experiment(engine, "acme", row.key)
    engagement = analysis.analyses["engagement"].comparisons[0]
    assert engagement.estimate == pytest.approx(0.4, abs=0.08)
    assert engagement.ci is not None
    assert engagement.ci[0] < 0.4 < engagement.ci[1]
    assert analysis.srm.passed
    assert analysis.recommendation == "promote", analysis.reasons
    documented = analysis.to_json()
    assert documented["recommendation"] == "promote"
    assert documented["metrics"]["candidate"]["sample_size"] == analysis.arms[1].exposed_units
    assert documented["performance_comparison"]["cost_efficiency_gain"] == pytest.approx(
        0.3, abs=0.02
    )


def test_a_sample_ratio_mismatch_blocks_the_decision(engine: Engine) -> None:
    row = service.create_experiment(engine, "acme", arms=ARMS)
    spec = TrafficSpec(row.key, [("baseline", 0.5), ("candidate", 0.5)], units=2000, lift=0.5)
    events = [e for chunk in generate_traffic(spec) for e in chunk]
    # Lose a third of the candidate's exposures, as a broken logger would.
    lost = [e for e in events if e["kind"] == "exposure" and e["arm"] == "candidate"][::3]
    dropped = {e["idempotency_key"] for e in lost}
    ingest_events(engine, "acme", [e for e in events if e["idempotency_key"] not in dropped])
    analysis = service.analyze_experiment(engine, "acme", row.key)
    assert not analysis.srm.passed
    assert analysis.recommendation == "continue"
    assert "sample ratio mismatch" in analysis.reasons[0]


def test_simulating_a_stopped_experiment_is_refused(engine: Engine) -> None:
    row = service.create_experiment(engine, "acme", arms=ARMS)
    service.stop_experiment(engine, "acme", row.key)
    with pytest.raises(InvalidStateError, match="not running"):
        simulate_traffic(engine, "acme", row.key, spec=TrafficSpec(row.key, ()))


def test_three_arms_are_each_compared_and_judged(engine: Engine) -> None:
    arms = [
        ArmSpec("baseline", "base", "1", 0.4),
        ArmSpec("candidate-1", "c1", "1", 0.3),
        ArmSpec("candidate-2", "c2", "1", 0.3),
    ]
    row = service.create_experiment(engine, "acme", arms=arms, duration_hours=1)
    spec = TrafficSpec(row.key, (), units=1500, lift=0.0, seed=2)
    simulate_traffic(engine, "acme", row.key, spec=spec)
    analysis = service.analyze_experiment(
        engine, "acme", row.key, now=utcnow() + timedelta(hours=2)
    )
    assert [arm.spec.name for arm in analysis.arms] == ["baseline", "candidate-1", "candidate-2"]
    assert sum(arm.exposed_units for arm in analysis.arms) == 1500
    assert [c.arm for c in analysis.analyses["engagement"].comparisons] == [
        "candidate-1",
        "candidate-2",
    ]
    assert set(analysis.decisions) == {"candidate-1", "candidate-2"}
    # No true lift and the planned hour is over: neither candidate can win.
    assert analysis.recommendation == "reject", analysis.reasons
    assert all(
        reason.startswith(("candidate-1: reject", "candidate-2: reject"))
        for reason in analysis.reasons
    )
