"""Tenant isolation of model references: every place a model id is accepted resolves it
within the caller's tenant (the proxy's pinned model, ``auto`` routing, ``/v1/route``,
``/v1/models``, A/B tests, deployments); a ``serving.upstreams`` entry serves its tenant's
model, or every tenant when it is ``shared`` (a provider's base model).

Acme has ``tuneloop-acme@2`` registered and served by an untenanted upstream entry, and an
upstream-only ``acme-private@1`` entry with ``tenant = "acme"``; ``gpt-base`` is shared.
Globex (tenant B) must reach none of acme's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from api_helpers import TENANT_A, TENANT_B, auth
from fake_openai import API_KEY, Behaviour, fake_openai, serve_in_thread
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tuneloop.api.app import create_app
from tuneloop.config import ServingSettings, Settings, UpstreamSettings
from tuneloop.experiments.service import ArmSpec
from tuneloop.resilience.registry import reset_process_breakers
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.store.experiment_models import Experiment
from tuneloop.store.experiments import add_experiment
from tuneloop.store.models_registry import record_model_version, set_champion

ACME_MODEL = "tuneloop-acme"
QUESTION = [{"role": "user", "content": "hello"}]


@dataclass
class World:
    client: TestClient
    engine: Engine
    upstream: Behaviour
    acme: dict[str, str]
    globex: dict[str, str]

    def chat(self, headers: dict[str, str], model: str, **more: Any) -> Any:
        body = {"model": model, "messages": QUESTION} | more
        return self.client.post("/v1/chat/completions", json=body, headers=headers)


@pytest.fixture
def world(api_settings: Settings) -> Iterator[World]:
    reset_process_breakers()
    behaviour = Behaviour()
    with serve_in_thread(fake_openai(behaviour)) as url:
        base = f"{url}/v1"
        upstreams = {
            f"{ACME_MODEL}@2": UpstreamSettings(base_url=base, api_key=API_KEY),
            "acme-private@1": UpstreamSettings(base_url=base, api_key=API_KEY, tenant=TENANT_A),
            "gpt-base": UpstreamSettings(base_url=base, api_key=API_KEY, shared=True),
        }
        settings = api_settings.model_copy(
            update={
                "serving": ServingSettings(upstreams=upstreams, route_cache_seconds=0),
                # Anything not served by an entry goes to a provider that is not there.
                "openai": api_settings.openai.model_copy(
                    update={"base_url": "http://127.0.0.1:9/v1"}
                ),
            }
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            engine: Engine = client.app.state.resources.engine  # type: ignore[attr-defined]
            for version in ("1", "2"):
                record_model_version(
                    engine,
                    TENANT_A,
                    model_id=ACME_MODEL,
                    version=version,
                    base_model="x",
                    status="challenger",
                )
            set_champion(engine, TENANT_A, ACME_MODEL, "2")
            acme = auth(create_api_key(engine, TENANT_A, role=Role.OPERATOR).plaintext)
            globex = auth(create_api_key(engine, TENANT_B, role=Role.OPERATOR).plaintext)
            yield World(client, engine, behaviour, acme, globex)
    reset_process_breakers()  # the routed test opens the `openai` breaker: leave none open


def test_a_pinned_model_of_another_tenant_is_not_found(world: World) -> None:
    assert world.chat(world.acme, f"{ACME_MODEL}@2").status_code == 200
    assert world.chat(world.acme, "acme-private@1").status_code == 200
    asked = len(world.upstream.requests)
    for model in (f"{ACME_MODEL}@2", f"{ACME_MODEL}@1", "acme-private@1"):
        refused = world.chat(world.globex, model)
        assert refused.status_code == 404, model
        assert "/v1/models" in refused.text
    assert len(world.upstream.requests) == asked  # acme's upstream never heard of globex


def test_a_shared_base_model_serves_every_tenant(world: World) -> None:
    for headers in (world.acme, world.globex):
        answer = world.chat(headers, "gpt-base@1")
        assert answer.status_code == 200
        assert answer.json()["model"] == "gpt-base@1"


def test_models_and_route_show_only_the_callers_models(world: World) -> None:
    acme_ids = {m["id"] for m in world.client.get("/v1/models", headers=world.acme).json()["data"]}
    assert {f"{ACME_MODEL}@1", f"{ACME_MODEL}@2"} <= acme_ids
    ids = {m["id"] for m in world.client.get("/v1/models", headers=world.globex).json()["data"]}
    assert ids == {"auto"}
    assert (
        world.client.post("/v1/route", json={"unit_id": "u"}, headers=world.globex).status_code
        == 404
    )
    assert world.chat(world.globex, "auto").status_code == 404


def _ab_test(baseline: str, candidate: str) -> dict[str, Any]:
    def ref(text: str) -> dict[str, str]:
        model_id, _, version = text.rpartition("@")
        return {"model_id": model_id, "version": version}

    return {
        "baseline_model": ref(baseline),
        "candidate_model": ref(candidate),
        "traffic_split": 0.5,
        "duration_hours": 24,
    }


@pytest.mark.parametrize(
    ("baseline", "candidate"),
    [
        (f"{ACME_MODEL}@1", f"{ACME_MODEL}@2"),  # acme's registered versions
        ("gpt-base@1", f"{ACME_MODEL}@7"),  # another version of acme's model
        ("gpt-base@1", "acme-private@1"),  # acme's upstream-only entry
    ],
)
def test_an_ab_test_of_another_tenants_models_is_refused(
    world: World, baseline: str, candidate: str
) -> None:
    body = _ab_test(baseline, candidate)
    refused = world.client.post("/evaluation/create-ab-test", json=body, headers=world.globex)
    assert refused.status_code == 404
    error = refused.json()["error"]
    assert error["type"] == "not_found"
    # Refused as unknown to the caller: nothing said about who has it.
    assert "acme" not in error["message"].replace(ACME_MODEL, "").replace("acme-private", "")


def test_an_ab_test_of_own_and_shared_models_is_created(world: World) -> None:
    body = _ab_test("gpt-base@1", f"{ACME_MODEL}@2")
    created = world.client.post("/evaluation/create-ab-test", json=body, headers=world.acme)
    assert created.status_code == 201


def test_a_deploy_of_another_tenants_version_is_refused(world: World) -> None:
    body = {
        "model_version": {"model_id": ACME_MODEL, "version": "2"},
        "evaluation_result": {
            "ab_test_id": "ab-test-20250102-001",
            "recommendation": "promote",
            "safety_checks_passed": True,
        },
    }
    refused = world.client.post("/deployment/deploy", json=body, headers=world.globex)
    assert refused.status_code in (404, 409)
    assert "not found" in refused.text


def test_routed_traffic_never_reaches_another_tenants_upstream(world: World) -> None:
    """An experiment row naming acme's model in globex (written before this check existed):
    globex's ``auto`` traffic goes to globex's own resolution, not acme's upstream."""
    arms = [ArmSpec("baseline", ACME_MODEL, "2", 0.5), ArmSpec("candidate", "gpt-base", "1", 0.5)]
    add_experiment(
        world.engine,
        Experiment(
            tenant_id=TENANT_B,
            key="ab-test-20250102-900",
            baseline_model_id=ACME_MODEL,
            baseline_version="2",
            candidate_model_id="gpt-base",
            candidate_version="1",
            traffic_split=0.5,
            arms=[arm.to_json() for arm in arms],
            duration_hours=24,
            success_criteria={},
            status="running",
        ),
    )
    asked_for_acme = 0
    for unit in range(20):
        before = len(world.upstream.requests)
        answer = world.chat(world.globex, "auto", user=f"u{unit}")
        if answer.headers.get("x-tuneloop-model") == f"{ACME_MODEL}@2":
            assert answer.status_code >= 500  # the provider fallback, not acme's upstream
            asked_for_acme += len(world.upstream.requests) - before
    assert asked_for_acme == 0
