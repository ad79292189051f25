"""Operator actions through the ASGI app on SQLite and PostgreSQL: promote the first champion
from the models page, deploy an experiment's winner from its page; and the dataset pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from registry_helpers import register_version
from tuneloop.api.app import create_app
from tuneloop.app.simulation import simulate_traffic
from tuneloop.config import Settings
from tuneloop.experiments import service
from tuneloop.experiments.service import ModelRef, two_arms
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.store.models_registry import champion_of
from tuneloop.synthetic.traffic import TrafficSpec
from tuneloop.tracking.connection import MLFLOW_ENV_DEFAULTS
from tuneloop.wiring import tracker_for

MODEL = "tuneloop-acme"


@pytest.fixture
def client(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    for name in MLFLOW_ENV_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    with TestClient(create_app(settings), follow_redirects=False) as started:
        yield started


def _engine(client: TestClient) -> Engine:
    engine: Engine = client.app.state.resources.engine  # type: ignore[attr-defined]
    return engine


def _login(client: TestClient, role: Role) -> str:
    key = create_api_key(_engine(client), "acme", role=role).plaintext
    login = client.get("/ui/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)  # type: ignore[union-attr]
    client.post("/ui/login", data={"csrf_token": token, "credential": key})
    page = client.get("/ui").text
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


@pytest.mark.slow
def test_promote_the_first_champion_from_the_models_page(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    engine = _engine(client)
    version = register_version(
        engine, tracker_for(settings), tmp_path / "a1", "p-001", tenant="acme"
    )
    csrf = _login(client, Role.OPERATOR)
    page = client.get("/ui/models").text
    assert f'action="/ui/models/{version}/promote"' in page and "p-001" in page
    answer = client.post(f"/ui/models/{version}/promote", data={"csrf_token": csrf})
    assert answer.status_code == 303, answer.text
    champion = champion_of(engine, "acme")
    assert champion is not None and champion.version == version
    assert "/promote" not in client.get("/ui/models").text  # later champions come from rollouts
    again = client.post(f"/ui/models/{version}/promote", data={"csrf_token": csrf})
    assert again.status_code == 409 and "already has champion" in again.text


@pytest.mark.slow
def test_deploy_the_winner_from_the_experiment_page(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    from tuneloop.pipeline.promotion import promote_first_champion

    engine = _engine(client)
    tracker = tracker_for(settings)
    first = register_version(engine, tracker, tmp_path / "a1", "p-001", tenant="acme")
    second = register_version(engine, tracker, tmp_path / "a2", "p-002", tenant="acme")
    promote_first_champion(engine, settings, "acme", version=first)
    arms = two_arms(ModelRef(MODEL, first), ModelRef(MODEL, second), 0.5)
    row = service.create_experiment(engine, "acme", arms=arms, duration_hours=24)
    spec = TrafficSpec(row.key, (), units=3000, lift=0.4, cost_change=-0.3, seed=11)
    simulate_traffic(engine, "acme", row.key, spec=spec)

    csrf = _login(client, Role.OPERATOR)
    page = client.get(f"/ui/experiments/{row.key}").text
    assert 'data-testid="recommendation"><strong>promote' in page
    assert 'data-chart="interval"' in page and "polygon" in page
    answer = client.post(f"/ui/experiments/{row.key}/deploy", data={"csrf_token": csrf})
    assert answer.status_code == 303, answer.text
    assert re.match(r"/ui/deployments/deploy-\d{8}-\d{3}\?", answer.headers["location"])
    shown = client.get(answer.headers["location"]).text
    assert "rolling_out" in shown and 'data-testid="traffic">10 %' in shown
    overview = client.get("/ui").text
    assert "Traffic share: <strong>10 %</strong>" in overview


def test_dataset_pages_show_counts_drops_and_a_preview(client: TestClient, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from tuneloop.store.models import DatasetVersion

    folder = tmp_path / "ds"
    folder.mkdir()
    example = '{"messages": [{"role": "user", "content": "write a hook"}, '
    example += '{"role": "assistant", "content": "Stop scrolling."}]}\n'
    (folder / "train.jsonl").write_text(example, encoding="utf-8")
    version = "ab" * 32
    manifest = {
        "tokens": {"train": {"mean": 12.5, "max": 30}},
        "estimated_training_cost_usd": 0.0123,
        "dropped": {"duplicates": 4, "invalid": {"empty_body": 2}, "samples": []},
    }
    row = DatasetVersion(
        tenant_id="acme", id=version, persona_id=None, path=str(folder), source_records=10,
        hook_examples=10, body_examples=10, train_examples=18, validation_examples=2,
        total_tokens=1234, manifest=manifest, created_at=datetime.now(UTC),
    )  # fmt: skip
    with Session(_engine(client)) as session, session.begin():
        session.add(row)
    _login(client, Role.VIEWER)
    assert f'href="/ui/datasets/{version}"' in client.get("/ui/datasets").text
    page = client.get(f"/ui/datasets/{version[:8]}").text
    assert "4 duplicates" in page and "empty_body: 2" in page
    assert "Stop scrolling." in page and "0.0123 USD" in page
