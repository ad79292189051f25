"""The OpenAI-compatible proxy, driven by the official ``openai`` client over real HTTP.

tuneloop runs under uvicorn (a thread, loopback) on SQLite and PostgreSQL; the upstream is
``fake_openai`` — an OpenAI-protocol server, also over HTTP. Each test checks what the client
sees and what tuneloop recorded (generation and exposure events, via the database).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from api_helpers import TENANT_A, TENANT_B
from fake_openai import API_KEY, Behaviour, fake_openai, serve_in_thread
from pydantic import SecretStr
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from tuneloop.api.app import create_app
from tuneloop.config import ServingSettings, Settings, UpstreamSettings
from tuneloop.experiments.service import ModelRef, create_experiment, two_arms
from tuneloop.resilience.registry import reset_process_breakers
from tuneloop.serving.service import Serving
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.store.experiment_models import OutcomeEvent
from tuneloop.store.models_registry import record_model_version, set_champion

MODEL = "acme-hook"
UPSTREAM_MODEL = "gpt-fake-mini"
QUESTION = [{"role": "user", "content": "write a hook about tea"}]


@dataclass
class Tuneloop:
    url: str
    engine: Engine
    serving: Serving
    key: str
    upstream: Behaviour

    def client(self, **options: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.key, max_retries=0, **options)

    def events(self, kind: str | None = None) -> list[OutcomeEvent]:
        assert self.serving.recorder.flush(10)
        query = select(OutcomeEvent).where(OutcomeEvent.tenant_id == TENANT_A)
        if kind is not None:
            query = query.where(OutcomeEvent.kind == kind)
        with Session(self.engine) as session:
            return list(session.scalars(query.order_by(OutcomeEvent.ts)))


def _serving(upstream_url: str, **more: Any) -> ServingSettings:
    upstream = UpstreamSettings(
        base_url=upstream_url,
        api_key=API_KEY,
        model=UPSTREAM_MODEL,
        input_price_per_million=1.0,
        output_price_per_million=2.0,
    )
    return ServingSettings(upstreams={MODEL: upstream}, **more)


def _version(engine: Engine, version: str, *, tenant: str = TENANT_A) -> None:
    record_model_version(
        engine, tenant, model_id=MODEL, version=version, base_model="tiny", status="challenger"
    )


@pytest.fixture
def upstream() -> Iterator[tuple[Behaviour, str]]:
    behaviour = Behaviour()
    with serve_in_thread(fake_openai(behaviour)) as url:
        yield behaviour, f"{url}/v1"


@contextmanager
def _served(settings: Settings, behaviour: Behaviour) -> Iterator[Tuneloop]:
    """tuneloop under uvicorn, version 1 of MODEL champion, an operator key."""
    app = create_app(settings)
    with serve_in_thread(app) as url:
        engine: Engine = app.state.resources.engine
        _version(engine, "1")
        set_champion(engine, TENANT_A, MODEL, "1")
        key = create_api_key(engine, TENANT_A, role=Role.OPERATOR).plaintext
        yield Tuneloop(url, engine, app.state.serving, key, behaviour)


@pytest.fixture
def tuneloop(api_settings: Settings, upstream: tuple[Behaviour, str]) -> Iterator[Tuneloop]:
    behaviour, upstream_url = upstream
    settings = api_settings.model_copy(update={"serving": _serving(upstream_url)})
    with _served(settings, behaviour) as served:
        yield served


def test_a_completion_is_routed_to_the_champion_and_recorded(tuneloop: Tuneloop) -> None:
    raw = tuneloop.client().chat.completions.with_raw_response.create(
        model="auto", messages=QUESTION, user="persona-1"
    )
    answer = raw.parse()
    generation_id = raw.headers["x-tuneloop-generation-id"]

    assert answer.choices[0].message.content == f"{UPSTREAM_MODEL} says: write a hook about tea"
    assert answer.model == f"{MODEL}@1"
    assert raw.headers["x-tuneloop-model"] == f"{MODEL}@1"
    assert raw.headers["x-tuneloop-route-source"] == "champion"
    assert tuneloop.upstream.requests[-1]["model"] == UPSTREAM_MODEL
    assert tuneloop.upstream.requests[-1]["user"] == "persona-1"  # forwarded as sent
    [event] = tuneloop.events("generation")
    assert event.generation_id == generation_id
    assert (event.unit_id, event.model_id, event.error) == ("persona-1", f"{MODEL}@1", False)
    usage = answer.usage
    assert usage is not None and event.tokens == usage.total_tokens
    expected_cost = (usage.prompt_tokens * 1.0 + usage.completion_tokens * 2.0) / 1e6
    assert event.cost == pytest.approx(expected_cost)
    assert event.latency_ms is not None and event.latency_ms > 0


def test_a_stream_arrives_whole_and_its_usage_is_recorded(tuneloop: Tuneloop) -> None:
    client = tuneloop.client()
    stream = client.chat.completions.create(model="auto", messages=QUESTION, stream=True)
    pieces = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in pieces)

    assert text == f"{UPSTREAM_MODEL} says: write a hook about tea"
    assert all(c.choices for c in pieces)  # the usage chunk was not asked for: not passed on
    assert all(c.model == f"{MODEL}@1" for c in pieces)
    # tuneloop asked the upstream for the usage anyway, to record the tokens
    assert tuneloop.upstream.requests[-1]["stream_options"] == {"include_usage": True}
    [event] = tuneloop.events("generation")
    assert event.tokens == 5 + 7 and event.error is False

    with_usage = list(
        client.chat.completions.create(
            model="auto",
            messages=QUESTION,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert with_usage[-1].choices == [] and with_usage[-1].usage is not None
    assert with_usage[-1].usage.total_tokens == 12


def test_a_whole_stream_without_done_is_no_error_but_a_cut_one_is(tuneloop: Tuneloop) -> None:
    client = tuneloop.client()
    tuneloop.upstream.omit_done = True
    whole = list(client.chat.completions.create(model="auto", messages=QUESTION, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in whole).endswith("about tea")
    tuneloop.upstream.omit_done, tuneloop.upstream.cut_after = False, 2
    cut: list[Any] = []
    with pytest.raises(openai.APIError, match="ended the stream early"):  # said, not silent
        cut.extend(client.chat.completions.create(model="auto", messages=QUESTION, stream=True))
    assert cut and all(c.choices[0].finish_reason is None for c in cut)
    assert [e.error for e in tuneloop.events("generation")] == [False, True]
    # The cut stream is the upstream's failure, for its breaker too (not a success).
    assert tuneloop.serving.upstream.breaker(f"upstream:{MODEL}").failure_count == 1


def test_an_upstream_refusing_our_key_is_a_502_not_the_clients_401(
    api_settings: Settings, upstream: tuple[Behaviour, str]
) -> None:
    behaviour, upstream_url = upstream
    serving = _serving(upstream_url)
    wrong = serving.upstreams[MODEL].model_copy(update={"api_key": SecretStr("not-the-key")})
    serving = serving.model_copy(update={"upstreams": {MODEL: wrong}})
    settings = api_settings.model_copy(update={"serving": serving})
    with _served(settings, behaviour) as served, pytest.raises(openai.APIStatusError) as failed:
        served.client().chat.completions.create(model="auto", messages=QUESTION)
    assert failed.value.status_code == 502
    assert "refused tuneloop's credentials" in str(failed.value)


def test_an_unregistered_pinned_version_is_looked_up_once(
    api_settings: Settings, upstream: tuple[Behaviour, str]
) -> None:
    behaviour, upstream_url = upstream
    serving = _serving(upstream_url)
    # Served, never registered: the entry names its tenant (an untenanted one would serve
    # only tenants that registered the version).
    entry = serving.upstreams[MODEL].model_copy(update={"tenant": TENANT_A})
    only_upstream = {f"{MODEL}@7": entry}
    settings = api_settings.model_copy(
        update={"serving": serving.model_copy(update={"upstreams": only_upstream})}
    )
    with _served(settings, behaviour) as served:
        client = served.client()
        client.chat.completions.create(model=f"{MODEL}@7", messages=QUESTION)
        lookups: list[str] = []

        def count(*args: Any) -> None:
            if "FROM model_versions" in args[2]:
                lookups.append(args[2])

        event.listen(served.engine, "before_cursor_execute", count)
        for _ in range(3):
            answer = client.chat.completions.create(model=f"{MODEL}@7", messages=QUESTION)
            assert answer.model == f"{MODEL}@7"
        event.remove(served.engine, "before_cursor_execute", count)
    assert lookups == []


def test_the_unit_header_names_the_unit_when_the_body_has_no_user(tuneloop: Tuneloop) -> None:
    client = tuneloop.client()
    client.chat.completions.create(
        model="auto", messages=QUESTION, extra_headers={"X-Tuneloop-Unit": "persona-9"}
    )
    client.chat.completions.create(
        model="auto",
        messages=QUESTION,
        user="persona-1",
        extra_headers={"X-Tuneloop-Unit": "persona-9"},
    )
    assert [e.unit_id for e in tuneloop.events("generation")] == ["persona-9", "persona-1"]


def test_a_model_without_prices_records_no_cost_not_zero(
    api_settings: Settings, upstream: tuple[Behaviour, str]
) -> None:
    behaviour, upstream_url = upstream
    section = api_settings.openai.model_copy(
        update={"base_url": upstream_url, "api_key": SecretStr(API_KEY)}
    )
    with _served(api_settings.model_copy(update={"openai": section}), behaviour) as served:
        served.client().chat.completions.create(model="auto", messages=QUESTION)
        [event] = served.events("generation")
    assert event.error is False and event.tokens is not None and event.cost is None


def test_a_malformed_upstream_stream_ends_in_an_error_event(tuneloop: Tuneloop) -> None:
    tuneloop.upstream.malformed_after = 2
    headers = {"Authorization": f"Bearer {tuneloop.key}"}
    body = {"model": "auto", "messages": QUESTION, "stream": True}
    with httpx.stream(
        "POST", f"{tuneloop.url}/v1/chat/completions", json=body, headers=headers
    ) as response:
        data = [line[5:].strip() for line in response.iter_lines() if line.startswith("data:")]
    assert response.status_code == 200
    assert json.loads(data[-1])["error"]["message"] == "the upstream sent a malformed event"
    [event] = tuneloop.events("generation")
    assert event.error is True


def test_a_client_that_leaves_mid_stream_is_no_model_error(tuneloop: Tuneloop) -> None:
    tuneloop.upstream.chunk_delay_s = 0.2
    headers = {"Authorization": f"Bearer {tuneloop.key}"}
    body = {"model": "auto", "messages": QUESTION, "stream": True}
    with httpx.stream(
        "POST", f"{tuneloop.url}/v1/chat/completions", json=body, headers=headers
    ) as response:
        first = next(line for line in response.iter_lines() if line.startswith("data:"))
    assert json.loads(first[5:])["choices"][0]["delta"]["role"] == "assistant"
    deadline = time.monotonic() + 10
    while not (events := tuneloop.events("generation")) and time.monotonic() < deadline:
        time.sleep(0.1)  # recorded once the server notices the disconnect
    [event] = events
    assert event.error is False


def test_generation_id_links_later_engagement(tuneloop: Tuneloop) -> None:
    raw = tuneloop.client().chat.completions.with_raw_response.create(
        model="auto", messages=QUESTION, user="persona-2"
    )
    generation_id = raw.headers["x-tuneloop-generation-id"]
    outcome = {
        "idempotency_key": "like-1",
        "kind": "outcome",
        "unit_id": "persona-2",
        "model_id": raw.headers["x-tuneloop-model"],
        "generation_id": generation_id,
        "engagement": 0.12,
        "ts": "2026-01-02T10:00:00Z",
    }
    response = httpx.post(
        f"{tuneloop.url}/v1/events",
        json={"events": [outcome]},
        headers={"Authorization": f"Bearer {tuneloop.key}"},
    )
    assert response.status_code == 200 and response.json()["accepted"] == 1
    linked = [e.kind for e in tuneloop.events() if e.generation_id == generation_id]
    assert sorted(linked) == ["generation", "outcome"]


def test_models_lists_auto_and_the_registered_versions(tuneloop: Tuneloop) -> None:
    _version(tuneloop.engine, "2")
    _version(tuneloop.engine, "9", tenant=TENANT_B)
    ids = {model.id for model in tuneloop.client().models.list()}
    assert ids == {"auto", f"{MODEL}@1", f"{MODEL}@2"}


def test_a_pinned_version_is_served_and_unknown_names_are_404(tuneloop: Tuneloop) -> None:
    _version(tuneloop.engine, "2")
    _version(tuneloop.engine, "8", tenant=TENANT_B)
    client = tuneloop.client()
    raw = client.chat.completions.with_raw_response.create(model=f"{MODEL}@2", messages=QUESTION)
    assert raw.headers["x-tuneloop-route-source"] == "pinned"
    assert raw.parse().model == f"{MODEL}@2"
    for name in ("gpt-4o", f"{MODEL}@7", f"{MODEL}@8"):  # @8 is another tenant's
        with pytest.raises(openai.NotFoundError, match="/v1/models"):
            client.chat.completions.create(model=name, messages=QUESTION)


def test_an_experiment_routes_sticky_arms_and_records_exposures(tuneloop: Tuneloop) -> None:
    _version(tuneloop.engine, "2")
    arms = two_arms(ModelRef(MODEL, "1"), ModelRef(MODEL, "2"), 0.5)
    experiment = create_experiment(tuneloop.engine, TENANT_A, arms=arms, duration_hours=24)
    client = tuneloop.client()
    served: dict[str, set[str]] = {}
    for unit in ("u1", "u2", "u3", "u4", "u5", "u6"):
        for _ in range(2):
            raw = client.chat.completions.with_raw_response.create(
                model="auto", messages=QUESTION, user=unit
            )
            assert raw.headers["x-tuneloop-route-source"] == "experiment"
            served.setdefault(unit, set()).add(raw.headers["x-tuneloop-model"])
    assert all(len(models) == 1 for models in served.values())  # sticky
    assert {m for models in served.values() for m in models} == {f"{MODEL}@1", f"{MODEL}@2"}
    generations = tuneloop.events("generation")
    assert len(generations) == 12
    assert all(e.experiment_key == experiment.key for e in generations)
    arm_of = {"1": "baseline", "2": "candidate"}
    assert all(e.arm == arm_of[e.model_id.rsplit("@")[1]] for e in generations)  # type: ignore[union-attr]
    exposures = tuneloop.events("exposure")
    assert sorted(e.unit_id for e in exposures) == ["u1", "u2", "u3", "u4", "u5", "u6"]


def test_upstream_errors_pass_through_and_count_as_errors(tuneloop: Tuneloop) -> None:
    tuneloop.upstream.error = True
    with pytest.raises(openai.InternalServerError, match="overloaded"):
        tuneloop.client().chat.completions.create(model="auto", messages=QUESTION)
    with pytest.raises(openai.InternalServerError):
        tuneloop.client().chat.completions.create(model="auto", messages=QUESTION, stream=True)
    events = tuneloop.events("generation")
    assert [e.error for e in events] == [True, True]
    assert all(e.model_id == f"{MODEL}@1" for e in events)


def test_bad_requests_are_422_and_need_a_key(tuneloop: Tuneloop) -> None:
    client = tuneloop.client()
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="auto", messages=[])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{tuneloop.url}/v1", api_key="nope", max_retries=0).models.list()
    assert tuneloop.events("generation") == []


def test_route_endpoint_checks_credentials_then_the_body(tuneloop: Tuneloop) -> None:
    url, headers = f"{tuneloop.url}/v1/route", {"Authorization": f"Bearer {tuneloop.key}"}
    assert httpx.post(url, json={"unit_id": ""}).status_code == 401  # credentials first
    for body, where in (({"unit_id": ""}, ["body", "unit_id"]), ({"unit": "x"}, ["body", "unit"])):
        refused = httpx.post(url, json=body, headers=headers)
        assert refused.status_code == 422
        assert where in [e["loc"] for e in refused.json()["error"]["details"]["errors"]]
    broken = httpx.post(url, content=b"{not json", headers=headers)
    assert broken.status_code == 422 and broken.json()["error"]["type"] == "invalid_input"


def test_route_endpoint_answers_like_the_proxy(tuneloop: Tuneloop) -> None:
    headers = {"Authorization": f"Bearer {tuneloop.key}"}
    response = httpx.post(f"{tuneloop.url}/v1/route", json={"unit_id": "u-9"}, headers=headers)
    assert response.status_code == 200
    assert response.json() == {
        "model": f"{MODEL}@1",
        "model_id": MODEL,
        "version": "1",
        "source": "champion",
        "experiment_key": None,
        "deployment_id": None,
        "arm": None,
    }
    other = create_api_key(tuneloop.engine, TENANT_B, role=Role.VIEWER).plaintext
    nothing = httpx.post(
        f"{tuneloop.url}/v1/route",
        json={"unit_id": "u-9"},
        headers={"Authorization": f"Bearer {other}"},
    )
    assert nothing.status_code == 404  # tenant B has nothing to serve


@pytest.fixture
def unreachable_openai(api_settings: Settings) -> Iterator[Tuneloop]:
    """Versions served by the `openai` section, whose base URL refuses connections."""
    reset_process_breakers()
    settings = api_settings.model_copy(
        update={
            "openai": api_settings.openai.model_copy(update={"base_url": "http://127.0.0.1:9/v1"})
        }
    )
    with _served(settings, Behaviour()) as served:
        yield served
    reset_process_breakers()


def test_an_unreachable_upstream_is_502_then_the_breaker_opens(
    unreachable_openai: Tuneloop,
) -> None:
    client = unreachable_openai.client()
    for _ in range(3):  # the documented OpenAI breaker: open after 3 failures
        with pytest.raises(openai.APIStatusError) as failed:
            client.chat.completions.create(model="auto", messages=QUESTION)
        assert failed.value.status_code == 502
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model="auto", messages=QUESTION)
    assert refused.value.status_code == 503
    assert int(refused.value.response.headers["retry-after"]) > 60
    health = httpx.get(f"{unreachable_openai.url}/health").json()
    assert health["components"]["openai_circuit_breaker"] == "OPEN"
    events = unreachable_openai.events("generation")
    assert len(events) == 4 and all(e.error for e in events)


def test_requests_with_a_nul_are_refused_and_lose_no_other_events(tuneloop: Tuneloop) -> None:
    """On PostgreSQL, 3 requests with ``"user": "u\\u0000x"`` among 300 used to cost 219 of the
    others' generation events (the recorder's batch was refused whole): now they are 422 at
    the edge and every other call's event is stored."""
    url, headers = (
        f"{tuneloop.url}/v1/chat/completions",
        {"Authorization": f"Bearer {tuneloop.key}"},
    )
    answers = []
    with httpx.Client(timeout=30) as http:
        for n in range(30):
            user = "u\u0000x" if n % 10 == 3 else f"u-{n}"
            body = {"model": "auto", "messages": QUESTION, "user": user}
            answers.append(http.post(url, json=body, headers=headers).status_code)
    assert answers.count(422) == 3 and answers.count(200) == 27
    assert len(tuneloop.events("generation")) == 27
