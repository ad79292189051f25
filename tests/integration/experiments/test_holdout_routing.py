"""The permanent holdout on the real store (SQLite and PostgreSQL): holdout units get the
reference model before any experiment, rollout or later champion; ``tuneloop holdout
report`` shows the cumulative lift of a promotion in a seeded simulation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from tuneloop.app.holdout import holdout_report
from tuneloop.cli.main import app
from tuneloop.config import Settings, get_settings
from tuneloop.experiments import service
from tuneloop.experiments.holdout import in_holdout
from tuneloop.experiments.service import ModelRef, two_arms
from tuneloop.rollout.routing import HoldoutPolicy, Route, routing_table
from tuneloop.store.deployment_models import Deployment, DeploymentEvent
from tuneloop.store.deployments import add_deployment
from tuneloop.store.models_registry import holdout_reference, record_model_version, set_champion
from tuneloop.synthetic.serving import Behaviour, serve_units
from tuneloop.wiring import build_container

TENANT = "acme"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
UNITS = [f"user-{i}" for i in range(4000)]


def _versions(engine: Engine, *versions: str) -> None:
    for version in versions:
        record_model_version(
            engine, TENANT, model_id="m", version=version, base_model="tiny", status="challenger"
        )


def _deploy(engine: Engine, new: str, previous: str, traffic: float) -> None:
    row = Deployment(
        tenant_id=TENANT, id="deploy-1", model_id="m", version=new, previous_model_id="m",
        previous_version=previous, strategy="gradual_rollout", status="rolling_out",
        traffic=traffic, step=1, rollout_config={}, guardrails={}, rollback_plan={},
        safety_checks=[], step_started_at=NOW,
    )  # fmt: skip
    event = DeploymentEvent(
        tenant_id=TENANT, deployment_id="deploy-1", seq=1, kind="deployed", from_traffic=0.0,
        to_traffic=traffic, reasons=[], details=None, actor="test", at=NOW,
    )  # fmt: skip
    add_deployment(engine, row, event)


def _routes(engine: Engine, policy: HoldoutPolicy | None) -> dict[str, Route]:
    table = routing_table(engine, TENANT, holdout=policy)
    return {unit: table.route(unit) for unit in UNITS}


def test_holdout_units_get_the_reference_through_a_test_a_rollout_and_promotions(
    engine: Engine,
) -> None:
    _versions(engine, "1", "2", "3")
    set_champion(engine, TENANT, "m", "1")
    set_champion(engine, TENANT, "m", "2")  # a promotion later: the reference stays v1
    assert holdout_reference(engine, TENANT) == ("m", "1")
    policy = HoldoutPolicy(share=0.1)
    held = {u for u in UNITS if in_holdout(TENANT, u, 0.1)}
    assert 0.08 < len(held) / len(UNITS) < 0.12

    # An A/B test of v2 against v3 takes every unit but the holdout's.
    experiment = service.create_experiment(
        engine, TENANT, arms=two_arms(ModelRef("m", "2"), ModelRef("m", "3"), 0.5)
    )
    during_test = _routes(engine, policy)
    assert {during_test[u].model for u in held} == {"m@1"}
    assert {during_test[u].source for u in held} == {"holdout"}
    others = [r for u, r in during_test.items() if u not in held]
    assert {r.source for r in others} == {"experiment"}
    assert {r.model for r in others} == {"m@2", "m@3"}
    without = _routes(engine, None)  # no holdout: everyone is in the test
    assert {without[u].source for u in held} == {"experiment"}

    # A rollout of v3 at 50 % after the test: the holdout still gets v1.
    service.stop_experiment(engine, TENANT, experiment.key)
    _deploy(engine, "3", "2", 0.5)
    during_rollout = _routes(engine, policy)
    assert {during_rollout[u].model for u in held} == {"m@1"}
    assert {r.source for u, r in during_rollout.items() if u not in held} == {"deployment"}
    # Sticky: the same units, the same answer, on a fresh table.
    assert _routes(engine, policy) == during_rollout


def test_a_pinned_reference_and_no_reference_before_a_champion(engine: Engine) -> None:
    _versions(engine, "1", "7")
    with pytest.raises(Exception, match="no experiment, deployment or champion"):
        routing_table(engine, TENANT, holdout=HoldoutPolicy(0.5)).route("user-1")
    set_champion(engine, TENANT, "m", "1")
    pinned = routing_table(engine, TENANT, holdout=HoldoutPolicy(0.5, "m@7"))
    held = next(u for u in UNITS if in_holdout(TENANT, u, 0.5))
    assert pinned.route(held).model == "m@7"
    assert ("m", "7") in pinned.models()


def _behaviour(route: Route) -> Behaviour:
    """The promoted v2 earns 30 % more engagement than the first champion, v1."""
    return Behaviour(engagement=0.065 if route.model == "m@2" else 0.05, error_rate=0.0)


def _simulate(engine: Engine, settings: Settings) -> Settings:
    _versions(engine, "1", "2")
    set_champion(engine, TENANT, "m", "1")
    set_champion(engine, TENANT, "m", "2")
    experiments = settings.experiments.model_copy(update={"holdout_share": 0.2})
    held = settings.model_copy(update={"experiments": experiments})
    policy = HoldoutPolicy(0.2)
    for day in range(3):
        served, report = serve_units(
            engine, TENANT, units=1500, seed=day, at=NOW + timedelta(days=day),
            behaviour=_behaviour, holdout=policy,
        )  # fmt: skip
        assert report.rejected == 0 and set(served) == {"m@1", "m@2"}
    return held


def test_the_report_shows_the_cumulative_lift(engine: Engine, settings: Settings) -> None:
    held = _simulate(engine, settings)
    report = holdout_report(build_container(held, engine=engine), tenant=TENANT)
    data = report.to_json()
    assert data["reference"] == "m@1" and data["holdout_share"] == 0.2
    groups = data["groups"]
    assert 0.15 < groups["holdout"]["units"] / 4500 < 0.25
    assert groups["holdout"]["units"] + groups["everyone_else"]["units"] == 4500
    effect = data["effect"]
    assert effect["significant"] is True
    low, high = effect["ci"]
    assert 0.2 < effect["estimate"] < 0.45  # the true lift is 30 %
    assert 0.1 < low < effect["estimate"] < high  # zero is far outside the interval
    assert data["srm"]["passed"] is True

    # A period without outcomes has no estimate, and says why instead of failing.
    flat = holdout_report(
        build_container(held, engine=engine), tenant=TENANT, since=NOW + timedelta(days=9)
    )
    assert flat.to_json()["effect"]["estimate"] is None
    assert flat.message.startswith("no estimate yet")


def test_the_cli_prints_a_table_and_json(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _simulate(engine, settings)
    monkeypatch.setenv("TUNELOOP_EXPERIMENTS__HOLDOUT_SHARE", "0.2")
    runner = CliRunner()
    shown = runner.invoke(app, ["holdout", "report", "--tenant", TENANT])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "holdout" in text and "everyone_else" in text and "m@1" in text
    assert "significant" in text and "not significant" not in text
    as_json = runner.invoke(app, ["holdout", "report", "--tenant", TENANT, "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["effect"]["estimate"] > 0.1 and data["effect"]["significant"] is True
    monkeypatch.setenv("TUNELOOP_EXPERIMENTS__HOLDOUT_SHARE", "0")
    get_settings.cache_clear()  # settings are read once per process
    off = runner.invoke(app, ["holdout", "report", "--tenant", TENANT, "--json"])
    assert json.loads(off.output)["message"].startswith("no holdout")


def test_the_serving_api_routes_holdout_units_to_the_reference(settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from tuneloop.api.app import create_app
    from tuneloop.store.auth_models import Role, create_api_key

    experiments = settings.experiments.model_copy(update={"holdout_share": 0.3})
    api = create_app(settings.model_copy(update={"experiments": experiments}))
    with TestClient(api) as client:
        engine = api.state.resources.engine
        _versions(engine, "1", "2")
        set_champion(engine, TENANT, "m", "1")
        set_champion(engine, TENANT, "m", "2")
        key = create_api_key(engine, TENANT, role=Role.OPERATOR).plaintext
        held = next(u for u in UNITS if in_holdout(TENANT, u, 0.3))
        other = next(u for u in UNITS if not in_holdout(TENANT, u, 0.3))
        answers = {
            unit: client.post(
                "/v1/route", json={"unit_id": unit}, headers={"Authorization": f"Bearer {key}"}
            ).json()
            for unit in (held, other)
        }
    assert (answers[held]["model"], answers[held]["source"]) == ("m@1", "holdout")
    assert answers[held]["arm"] == "holdout"
    assert (answers[other]["model"], answers[other]["source"]) == ("m@2", "champion")
