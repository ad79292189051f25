"""The loop closed through the proxy: a rollout whose new model fails is rolled back by the
next tick, from nothing but the generations the proxy recorded, and traffic returns.

Real parts only: the embedded MLflow registry, the deployment manager, tuneloop under uvicorn,
the official ``openai`` client, and two OpenAI-protocol upstreams over HTTP — the previous
model's answers, the new model's answers 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from api_helpers import TENANT_A
from fake_openai import API_KEY, Behaviour, fake_openai, serve_in_thread
from sqlalchemy import Engine

from registry_helpers import register_version
from tuneloop.api.app import create_app
from tuneloop.app.simulation import simulate_traffic
from tuneloop.config import ServingSettings, Settings, UpstreamSettings
from tuneloop.errors import TuneloopError
from tuneloop.experiments import service
from tuneloop.experiments.service import ModelRef, two_arms
from tuneloop.pipeline.promotion import promote_first_champion
from tuneloop.rollout.manager import DeploymentManager
from tuneloop.rollout.policy import Guardrails, RolloutConfig
from tuneloop.rollout.safety import EvaluationResult
from tuneloop.serving.probe import ServingProbe
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.synthetic.traffic import TrafficSpec
from tuneloop.wiring import tracker_for

MODEL = "tuneloop-acme"
QUESTION = [{"role": "user", "content": "a hook about tea"}]


@pytest.fixture
def upstreams() -> Iterator[tuple[str, str]]:
    """Base URLs of a healthy upstream and of one that answers every call with a 500."""
    with (
        serve_in_thread(fake_openai(Behaviour())) as good,
        serve_in_thread(fake_openai(Behaviour(error=True))) as bad,
    ):
        yield f"{good}/v1", f"{bad}/v1"


def test_a_failing_new_model_is_rolled_back_by_one_tick(
    mlflow_environment: None,
    api_settings: Settings,
    upstreams: tuple[str, str],
    tmp_path: Path,
) -> None:
    good, bad = upstreams
    serving = ServingSettings(
        route_cache_seconds=0,  # see each rollout change at once (the default is 1 s)
        upstreams={
            f"{MODEL}@1": UpstreamSettings(base_url=good, api_key=API_KEY),
            f"{MODEL}@2": UpstreamSettings(base_url=bad, api_key=API_KEY),
        },
    )
    settings = api_settings.model_copy(update={"serving": serving})
    app = create_app(settings)
    with serve_in_thread(app) as url:
        engine: Engine = app.state.resources.engine
        tracker = tracker_for(settings)
        first = register_version(engine, tracker, tmp_path / "a1", "p-001", tenant=TENANT_A)
        second = register_version(engine, tracker, tmp_path / "a2", "p-002", tenant=TENANT_A)
        promote_first_champion(engine, settings, TENANT_A, version=first)
        arms = two_arms(ModelRef(MODEL, first), ModelRef(MODEL, second), 0.5)
        test = service.create_experiment(engine, TENANT_A, arms=arms, duration_hours=24)
        spec = TrafficSpec(test.key, (), units=3000, lift=0.4, cost_change=-0.3, seed=11)
        simulate_traffic(engine, TENANT_A, test.key, spec=spec)
        manager = DeploymentManager(engine, tracker=tracker, settings=settings.rollout)
        deployment = manager.deploy(
            TENANT_A,
            model=ModelRef(MODEL, second),
            evaluation=EvaluationResult(test.key),
            rollout_config=RolloutConfig(initial_traffic=0.5),
            guardrails=Guardrails(min_generations=20),
        )
        client = openai.OpenAI(
            base_url=f"{url}/v1",
            api_key=create_api_key(engine, TENANT_A, role=Role.OPERATOR).plaintext,
            max_retries=0,
        )

        def ask(unit: str) -> str:
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model="auto", messages=QUESTION, user=unit
                )
            except openai.InternalServerError as exc:
                return f"failed:{exc.response.headers['x-tuneloop-model']}"
            return f"ok:{raw.headers['x-tuneloop-model']}"

        before = [ask(f"u{i}") for i in range(80)]
        assert {f"ok:{MODEL}@1", f"failed:{MODEL}@2"} == set(before)  # both sides served
        assert app.state.serving.recorder.flush(10)

        [outcome] = manager.tick(TENANT_A)

        assert (outcome.deployment_id, outcome.action) == (deployment.id, "rollback")
        assert outcome.traffic == 0.0
        assert any("error rate" in reason for reason in outcome.reasons), outcome.reasons
        after = [ask(f"u{i}") for i in range(80)]
        assert set(after) == {f"ok:{MODEL}@1"}  # every unit is back on the previous model


def test_the_reachability_check_asks_the_configured_upstream(
    api_settings: Settings, upstreams: tuple[str, str]
) -> None:
    good, bad = upstreams

    class NoArtifacts:
        def probe(self, tenant_id: str, model_id: str, version: str) -> str:
            return "artifact probed"

    serving = ServingSettings(
        upstreams={
            f"{MODEL}@1": UpstreamSettings(base_url=good, api_key=API_KEY, model="m1"),
            f"{MODEL}@2": UpstreamSettings(base_url=bad, api_key=API_KEY, model="m2"),
            f"{MODEL}@3": UpstreamSettings(base_url="http://127.0.0.1:9/v1"),
        }
    )
    probe = ServingProbe(api_settings.model_copy(update={"serving": serving}), NoArtifacts())
    assert probe.probe(TENANT_A, MODEL, "1") == f"{good} answered for model 'm1'"
    with pytest.raises(TuneloopError, match="answered 500 for model 'm2'"):
        probe.probe(TENANT_A, MODEL, "2")
    with pytest.raises(TuneloopError, match="could not be reached"):
        probe.probe(TENANT_A, MODEL, "3")
    assert probe.probe(TENANT_A, MODEL, "4") == "artifact probed"  # not served upstream
