"""A real run in the browser: an operator starts it with the button, watches the loss chart
gain points while the tiny model trains, and aborts it with the button; the API agrees."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_server import Served
from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.posts.schema import PostIn
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.store.posts import upsert_posts
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts

pytestmark = [pytest.mark.train, pytest.mark.slow]
SPEC = SyntheticSpec(posts=1600, seed=5)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch", reason="the train extra (torch) is not installed")
    pytest.importorskip("mlflow", reason="the train extra (mlflow) is not installed")
    from tuneloop.train.tiny import ensure_tiny_base

    folder = tmp_path_factory.mktemp("tiny") / "base"
    posts = [(p["hook"], p["body"]) for p in generate_posts(SPEC)][:300]
    return ensure_tiny_base(folder, lambda: posts)


@pytest.fixture
def served_settings(
    settings: Settings, engine: Engine, tiny_base: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """Posts and the tiny base for tenant acme; far more epochs than the test waits for."""
    rows = generate_posts(SPEC, now=datetime.now(UTC))
    upsert_posts(engine, "acme", (PostIn.model_construct(**row) for row in rows))
    shutil.copytree(tiny_base, settings.workspace / "models" / "tiny-acme")
    monkeypatch.setenv("TUNELOOP_TRAINING__EPOCHS", "200")
    training = settings.training.model_copy(update={"epochs": 200})
    return settings.model_copy(update={"training": training})


def _points(page: Any) -> int:
    found = page.locator("[data-testid=loss-chart] polyline.series")
    return int(found.get_attribute("data-points")) if found.count() else 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_start_watch_the_loss_chart_grow_and_abort(page: Any, served: Served) -> None:
    key = create_api_key(served.engine, "acme", role=Role.OPERATOR).plaintext
    page.goto("/ui/login")
    page.get_by_label("API key or JWT").fill(key)
    page.get_by_role("button", name="Log in").click()
    page.goto("/ui/runs")
    page.get_by_role("button", name="Start a run").click()
    page.wait_for_url(re.compile(r"/ui/runs/ft-pipeline-[0-9-]+\?notice="))
    run_id = page.url.split("/ui/runs/")[1].split("?")[0]

    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=loss-chart] polyline.series')"
        "?.getAttribute('data-points') || 0) >= 1",
        timeout=120_000,
    )
    first = _points(page)
    page.wait_for_function(  # the page is not reloaded: polling brings the new points
        f"() => Number(document.querySelector('[data-testid=loss-chart] polyline.series')"
        f"?.getAttribute('data-points') || 0) > {first}",
        timeout=60_000,
    )

    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_label("Reason").fill("seen enough")
    page.get_by_role("button", name="Abort run").click()
    page.wait_for_url(re.compile(r"notice=.*aborted"), timeout=90_000)
    answer = httpx.get(
        f"{served.url}/fine-tuning/status/{run_id}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    ).json()
    assert answer["status"] == "aborted" and answer["message"] == "aborted: seen enough"
    assert "aborted" in page.locator("#run .badge").first.inner_text()
