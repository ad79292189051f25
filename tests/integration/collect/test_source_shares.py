"""The dataset's share per source model version and ``dataset.max_share_per_model``, on the
real collector (SQLite and PostgreSQL), shown by the datasets API and CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from tuneloop.cli.main import app
from tuneloop.collect.query import CollectQuery
from tuneloop.collect.service import collect_dataset
from tuneloop.config import Settings
from tuneloop.posts.schema import PostIn
from tuneloop.store.posts import upsert_posts

NOW = datetime.now(UTC)


def _posts(source: str | None, n: int, start: int, top: float) -> list[PostIn]:
    return [
        PostIn(
            id=f"p{start + i:04d}",
            hook=f"Hook {start + i}",
            body=f"Body {start + i}",
            engagement_rate=round(top - i / 10_000, 6),
            model_id=source,
            ts=NOW - timedelta(hours=1 + i / 100),
        )
        for i in range(n)
    ]


@pytest.fixture
def posts(engine: Engine) -> Engine:
    """150 posts by m@2, 50 by m@1, 50 written by people: 60 % / 20 % / 20 %."""
    rows = _posts("m@2", 150, 0, 0.5) + _posts("m@1", 50, 1000, 0.4) + _posts(None, 50, 2000, 0.3)
    upsert_posts(engine, "acme", rows)
    return engine


def _collect(engine: Engine, settings: Settings, max_share: float) -> dict[str, object]:
    dataset = settings.dataset.model_copy(update={"max_share_per_model": max_share})
    pipeline = settings.pipeline.model_copy(update={"training_data_threshold": 10})
    capped = settings.model_copy(update={"dataset": dataset, "pipeline": pipeline})
    outcome = collect_dataset(engine, capped, CollectQuery(tenant_id="acme", max_records=None))
    assert outcome.version is not None, outcome.result.message
    sources = outcome.version.manifest["sources"]
    assert isinstance(sources, dict)
    return sources


@pytest.mark.parametrize(("max_share", "dropped"), [(1.0, {}), (0.6, {}), (0.7, {})])
def test_at_or_above_the_largest_share_nothing_is_dropped(
    posts: Engine, settings: Settings, max_share: float, dropped: dict[str, int]
) -> None:
    sources = _collect(posts, settings, max_share)
    assert sources["shares"] == {"m@2": 0.6, "m@1": 0.2, "unknown": 0.2}
    assert sources["dropped_posts"] == dropped and sources["reason"] is None


def test_below_it_the_over_represented_version_loses_its_weakest_posts(
    posts: Engine, settings: Settings
) -> None:
    sources = _collect(posts, settings, 0.4)
    # K = 100 + min(150, ⌊0.4K⌋) → K = 166: m@2 keeps 66 of 150
    assert sources["dropped_posts"] == {"m@2": 84}
    shares = sources["shares"]
    assert isinstance(shares, dict) and shares["m@2"] <= 0.4
    assert "lowest-engagement" in str(sources["reason"])


def test_the_datasets_api_and_cli_show_the_shares(posts: Engine, settings: Settings) -> None:
    _collect(posts, settings, 1.0)
    runner = CliRunner()
    result = runner.invoke(app, ["datasets", "list", "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    cell = " ".join(result.output.split())  # the table wraps the cell at the terminal width
    assert all(part in cell for part in ("m@2 60%", "m@1", "unknown", "20%")), result.output
    from fastapi.testclient import TestClient

    from tuneloop.api.app import create_app
    from tuneloop.store.auth_models import Role, create_api_key

    api = create_app(settings)
    with TestClient(api) as client:
        key = create_api_key(api.state.resources.engine, "acme", role=Role.VIEWER).plaintext
        page = client.get("/datasets", headers={"Authorization": f"Bearer {key}"})
    assert page.status_code == 200, page.text
    (item,) = page.json()["items"]
    assert item["source_shares"] == {"m@2": 0.6, "m@1": 0.2, "unknown": 0.2}
    assert json.loads(json.dumps(item))["source_shares"]["m@2"] == 0.6
