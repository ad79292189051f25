"""A locally trained version served through the proxy: warm-up gates readiness, the official
``openai`` client gets the local server's answer (whole and streamed), and the generation
is recorded with its tokens."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tuneloop.api.app import create_app
from tuneloop.config import Settings
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.store.experiment_models import OutcomeEvent
from tuneloop.store.models_registry import record_model_version, set_champion
from tuneloop.train.generate import TextGenerator
from tuneloop.wiring import engine_for

pytestmark = pytest.mark.train
PROMPT = "Create engaging content"


def test_the_proxy_serves_a_local_adapter(
    tmp_path: Path, tiny_base: Path, trained: tuple[Any, list[Any]]
) -> None:
    adapter = trained[0].adapter_path
    url = f"sqlite:///{tmp_path / 'tuneloop.db'}"
    prices = {"input_price_per_million": 0.5, "output_price_per_million": 1.5}
    settings = Settings(workspace=tmp_path, database={"url": url}, serving={"local": prices})
    engine = engine_for(settings)
    record_model_version(
        engine,
        "acme",
        model_id="acme-local",
        version="1",
        base_model=str(tiny_base),
        adapter_path=str(adapter),
        status="challenger",
    )
    set_champion(engine, "acme", "acme-local", "1")
    key = create_api_key(engine, "acme", role=Role.OPERATOR).plaintext
    expected = (
        TextGenerator.load(tiny_base, Path(adapter), merge=False)
        .generate(PROMPT, max_new_tokens=12)
        .text
    )

    with TestClient(create_app(settings)) as http:
        deadline = time.monotonic() + 120
        while http.get("/health/ready").status_code != 200:  # warming the champion
            assert time.monotonic() < deadline, http.get("/health/ready").json()
            time.sleep(0.2)
        client = openai.OpenAI(
            base_url="http://testserver/v1", api_key=key, http_client=http, max_retries=0
        )
        message = [{"role": "user", "content": PROMPT}]
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=message, max_tokens=12, temperature=0, user="persona-1"
        )
        answer = raw.parse()
        streamed = client.chat.completions.create(
            model="auto", messages=message, max_tokens=12, temperature=0, stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in streamed)
        assert http.app.state.serving.recorder.flush(10)  # type: ignore[attr-defined]

    assert answer.choices[0].message.content == expected
    assert text == expected
    assert answer.model == "acme-local@1" and answer.usage is not None
    with Session(engine) as session:
        event = session.scalars(
            select(OutcomeEvent).where(
                OutcomeEvent.generation_id == raw.headers["x-tuneloop-generation-id"]
            )
        ).one()
    assert event.tokens == answer.usage.total_tokens
    usage = answer.usage
    priced = (usage.prompt_tokens * 0.5 + usage.completion_tokens * 1.5) / 1_000_000
    assert event.cost == pytest.approx(priced) and priced > 0  # serving.local's prices
    assert event.error is False and event.model_id == "acme-local@1"
