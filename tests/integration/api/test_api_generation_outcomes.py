"""Engagement sent with nothing but the proxy's generation id is counted where it belongs.

The official ``openai`` client calls tuneloop's proxy (uvicorn, loopback) during an A/B test
and during a rollout; each outcome is posted to ``/v1/events`` with only its
``generation_id`` (202: into the event stream, written by the app's consumer). It inherits
unit, model, experiment and arm from the generation, so the experiment's statistics count
exactly these outcomes and decide, and the rollout's checks see them per model. An unknown
generation id is refused with a reason; the rest is kept.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import openai
from api_helpers import TENANT_A, caught_up
from fake_openai import API_KEY, Behaviour, fake_openai, serve_in_thread
from sqlalchemy import Engine
from test_api_proxy import MODEL, QUESTION, Tuneloop, tuneloop, upstream  # noqa: F401 (fixtures)

from registry_helpers import register_version
from tuneloop.api.app import create_app
from tuneloop.app.simulation import simulate_traffic
from tuneloop.config import ServingSettings, Settings, UpstreamSettings
from tuneloop.domain.experiments import SuccessCriteria
from tuneloop.experiments.service import (
    ModelRef,
    analyze_experiment,
    create_experiment,
    two_arms,
)
from tuneloop.pipeline.promotion import promote_first_champion
from tuneloop.rollout.checks import gather
from tuneloop.rollout.manager import DeploymentManager
from tuneloop.rollout.policy import RolloutConfig
from tuneloop.rollout.safety import EvaluationResult
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.store.models_registry import record_model_version
from tuneloop.store.types import utcnow
from tuneloop.synthetic.traffic import TrafficSpec
from tuneloop.wiring import tracker_for

ENGAGEMENT = {"baseline": 0.05, "candidate": 0.10}


def _post(url: str, key: str, events: list[dict[str, object]]) -> dict[str, object]:
    response = httpx.post(
        f"{url}/v1/events", json={"events": events}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 202, response.text
    body: dict[str, object] = response.json()
    return body


def _outcome(generation_id: str, engagement: float, index: int) -> dict[str, object]:
    return {
        "idempotency_key": f"like-{index}",
        "kind": "outcome",
        "generation_id": generation_id,
        "engagement": engagement,
        "ts": utcnow().isoformat(),
    }


def test_outcomes_named_by_generation_decide_the_ab_test(tuneloop: Tuneloop) -> None:  # noqa: F811
    record_model_version(
        tuneloop.engine, TENANT_A, model_id=MODEL, version="2", base_model="t", status="challenger"
    )
    arms = two_arms(ModelRef(MODEL, "1"), ModelRef(MODEL, "2"), 0.5)
    criteria = SuccessCriteria(min_cost_efficiency_gain=-1.0)  # both arms cost the same here
    test = create_experiment(
        tuneloop.engine, TENANT_A, arms=arms, duration_hours=1, success_criteria=criteria
    )
    client = tuneloop.client()
    outcomes, per_arm = [], Counter[str]()
    for index in range(60):
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=QUESTION, user=f"unit-{index}"
        )
        assert raw.headers["x-tuneloop-experiment"] == test.key
        arm = raw.headers["x-tuneloop-arm"]
        per_arm[arm] += 1
        engagement = ENGAGEMENT[arm] * (1 + 0.05 * (index % 5))
        outcomes.append(_outcome(raw.headers["x-tuneloop-generation-id"], engagement, index))
    outcomes.append(_outcome("gen-that-never-was", 0.5, 999))

    report = _post(tuneloop.url, tuneloop.key, outcomes)
    assert tuneloop.consumer.catch_up(timeout=20), "events still waiting"

    assert (report["accepted"], report["rejected"]) == (60, 1)
    assert report["errors"] == [
        {
            "index": 60,
            "field": "generation_id",
            "reason": "no generation 'gen-that-never-was' was recorded for this tenant",
        }
    ]
    at_end = test.started_at + timedelta(hours=2)  # type: ignore[operator]
    analysis = analyze_experiment(tuneloop.engine, TENANT_A, test.key, method="fixed", now=at_end)
    counted = {arm.spec.name: arm.metrics["engagement"].n for arm in analysis.arms}
    assert counted == dict(per_arm) and min(per_arm.values()) > 10
    assert analysis.recommendation == "promote", analysis.reasons


def test_a_rollout_check_sees_outcomes_named_by_generation(
    mlflow_environment: None, api_settings: Settings, tmp_path: Path
) -> None:
    with serve_in_thread(fake_openai(Behaviour())) as server:
        base = f"{server}/v1"
        serving = ServingSettings(
            route_cache_seconds=0,
            upstreams={
                f"tuneloop-{TENANT_A}@1": UpstreamSettings(base_url=base, api_key=API_KEY),
                f"tuneloop-{TENANT_A}@2": UpstreamSettings(base_url=base, api_key=API_KEY),
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
            model = f"tuneloop-{TENANT_A}"
            arms = two_arms(ModelRef(model, first), ModelRef(model, second), 0.5)
            test = create_experiment(engine, TENANT_A, arms=arms, duration_hours=24)
            spec = TrafficSpec(test.key, (), units=3000, lift=0.4, cost_change=-0.3, seed=11)
            simulate_traffic(engine, TENANT_A, test.key, spec=spec)
            manager = DeploymentManager(engine, tracker=tracker, settings=settings.rollout)
            deployment = manager.deploy(
                TENANT_A,
                model=ModelRef(model, second),
                evaluation=EvaluationResult(test.key),
                rollout_config=RolloutConfig(initial_traffic=0.5),
            )
            key = create_api_key(engine, TENANT_A, role=Role.OPERATOR).plaintext
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
            outcomes, per_model = [], Counter[str]()
            for index in range(40):
                raw = client.chat.completions.with_raw_response.create(
                    model="auto", messages=QUESTION, user=f"unit-{index}"
                )
                assert "x-tuneloop-experiment" not in raw.headers  # a rollout, not a test
                per_model[raw.headers["x-tuneloop-model"]] += 1
                outcomes.append(_outcome(raw.headers["x-tuneloop-generation-id"], 0.05, index))
            before = gather(engine, deployment, now=utcnow() + timedelta(minutes=1))
            assert _post(url, key, outcomes)["accepted"] == 40
            caught_up(app)

            seen = gather(engine, deployment, now=utcnow() + timedelta(minutes=1))

            new = seen.new_engagement.n - before.new_engagement.n
            old = seen.old_engagement.n - before.old_engagement.n
            assert new == per_model[f"{model}@{second}"] > 0
            assert old == per_model[f"{model}@{first}"] > 0
