"""A version trained by the hosted API is served by the proxy under its ``ft:`` name.

No ``serving.upstreams`` entry: the version's ``served_model`` sends it to the ``openai``
section (here the fake fine-tuning API, which answers chat completions for the models it
produced), through the official client over real HTTP.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import openai
from api_helpers import TENANT_A
from fake_openai import serve_in_thread
from pydantic import SecretStr

from tuneloop.api.app import create_app
from tuneloop.config import Settings
from tuneloop.domain.clock import ManualClock
from tuneloop.resilience.registry import reset_process_breakers
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.store.models_registry import record_model_version, set_champion
from tuneloop.train.hosted.fake import API_KEY, FakeFineTuning, serve

MODEL = "tuneloop-acme"


def _fine_tuned(base_url: str, clock: ManualClock) -> str:
    """A job run to its end at the fake, as the hosted backend would have: its ft: name."""
    client = openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)
    line = (
        b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}'
    )
    uploaded = client.files.create(file=("train.jsonl", line), purpose="fine-tune")
    clock.advance(timedelta(seconds=10))
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=uploaded.id)
    clock.advance(timedelta(hours=2))
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded" and done.fine_tuned_model
    return done.fine_tuned_model


def test_a_hosted_version_is_routed_to_its_ft_model(api_settings: Settings) -> None:
    reset_process_breakers()
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    with serve(FakeFineTuning(clock)) as provider:
        fine_tuned = _fine_tuned(provider, clock)
        settings = api_settings.model_copy(
            update={
                "openai": api_settings.openai.model_copy(
                    update={"base_url": provider, "api_key": SecretStr(API_KEY)}
                )
            }
        )
        app = create_app(settings)
        with serve_in_thread(app) as url:
            engine = app.state.resources.engine
            record_model_version(
                engine,
                TENANT_A,
                model_id=MODEL,
                version="1",
                base_model="gpt-4o-mini",
                served_model=fine_tuned,
                status="challenger",
            )
            set_champion(engine, TENANT_A, MODEL, "1")
            key = create_api_key(engine, TENANT_A, role=Role.OPERATOR).plaintext
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
            raw = client.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": "a hook about tea"}]
            )
    answer = raw.parse()
    assert raw.headers["x-tuneloop-model"] == f"{MODEL}@1"
    assert answer.choices[0].message.content == f"{fine_tuned} says: a hook about tea"
    reset_process_breakers()
