"""The dashboard in a real browser (Chromium) against a served app, on SQLite and PostgreSQL:
log in, the overview, a run's live loss chart, an experiment's interval chart, an operator's
rollback agreeing with the API, a viewer without buttons, another tenant's 404, log out."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_server import Served
from sqlalchemy import text

from registry_helpers import register_version
from tuneloop.app.deployments import deploy
from tuneloop.app.simulation import simulate_traffic
from tuneloop.domain.runs import RunStatus
from tuneloop.experiments import service
from tuneloop.experiments.service import ModelRef, two_arms
from tuneloop.pipeline.promotion import promote_first_champion
from tuneloop.pipeline.service import start_run
from tuneloop.rollout.safety import EvaluationResult
from tuneloop.store import runs as run_store
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.store.experiments import update_experiment
from tuneloop.synthetic.traffic import TrafficSpec
from tuneloop.wiring import build_container, tracker_for

pytestmark = pytest.mark.usefixtures("mlflow_env")


@pytest.fixture
def mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from tuneloop.tracking.connection import MLFLOW_ENV_DEFAULTS

    for name in MLFLOW_ENV_DEFAULTS:
        monkeypatch.delenv(name, raising=False)


def _login(page: Any, key: str) -> None:
    page.goto("/ui")
    assert "/ui/login" in page.url
    page.get_by_label("API key or JWT").fill(key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/ui$"))


def _key(served: Served, role: Role, tenant: str = "acme") -> str:
    return create_api_key(served.engine, tenant, role=role).plaintext


def _deployed(served: Served, tmp_path: Path) -> tuple[str, str]:
    """v1 champion, v2 won an A/B test and is rolling out: (ab_test_id, deployment_id)."""
    engine, settings = served.engine, served.settings
    tracker = tracker_for(settings)
    first = register_version(engine, tracker, tmp_path / "a1", "p-001", tenant="acme")
    second = register_version(engine, tracker, tmp_path / "a2", "p-002", tenant="acme")
    promote_first_champion(engine, settings, "acme", version=first)
    model = "tuneloop-acme"
    arms = two_arms(ModelRef(model, first), ModelRef(model, second), 0.5)
    row = service.create_experiment(engine, "acme", arms=arms, duration_hours=24)
    # it began two hours ago, with the simulated traffic (spread over the last two hours)
    began = datetime.now(UTC) - timedelta(hours=2, minutes=1)
    update_experiment(engine, "acme", row.key, lambda found: setattr(found, "started_at", began))
    spec = TrafficSpec(row.key, (), units=3000, lift=0.4, cost_change=-0.3, seed=11)
    simulate_traffic(engine, "acme", row.key, spec=spec)
    if engine.dialect.name == "postgresql":
        # What autovacuum does on a live server soon after a bulk load: without fresh
        # statistics the planner takes 3,000 units for one, and each look at the evidence
        # takes seconds instead of milliseconds (noted in the round's report).
        with engine.begin() as connection:
            connection.execute(text("ANALYZE outcome_events"))
    deployment = deploy(
        build_container(settings, engine=engine),
        "acme",
        model=ModelRef(model, second),
        evaluation=EvaluationResult(row.key),
        strategy="gradual_rollout",
        rollout={},
    )
    return row.key, deployment.id


def test_login_run_loss_chart_grows_and_logout(page: Any, served: Served) -> None:
    engine = served.engine
    run = start_run(engine, served.settings, "acme", force_run=True)
    run_store.move_run(engine, "acme", run.id, RunStatus.RUNNING)
    run_store.update_step(
        engine, "acme", run.id, "train", status="running", output={"losses": [2.0, 1.8, 1.7]}
    )
    _login(page, _key(served, Role.VIEWER))
    assert page.get_by_role("heading", name="The loop at a glance").is_visible()
    assert run.id in page.locator("#overview").inner_text()  # the active run
    page.get_by_role("link", name=run.id).first.click()
    chart = page.locator("[data-testid=loss-chart] polyline.series")
    assert chart.get_attribute("data-points") == "3"
    # training goes on: the page polls and the chart gains points without a reload
    run_store.update_step(
        engine, "acme", run.id, "train", output={"losses": [2.0, 1.8, 1.7, 1.5, 1.4]}
    )
    page.wait_for_selector("[data-testid=loss-chart] polyline.series[data-points='5']")
    assert page.locator("form[action$='/abort']").count() == 0  # a viewer has no buttons
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/ui/login"))
    page.goto(f"/ui/runs/{run.id}")
    assert "/ui/login" in page.url  # the session is gone


@pytest.mark.slow
def test_operator_rolls_back_and_api_agrees(page: Any, served: Served, tmp_path: Path) -> None:
    ab_test_id, deployment_id = _deployed(served, tmp_path)
    key = _key(served, Role.OPERATOR)
    _login(page, key)
    page.goto(f"/ui/experiments/{ab_test_id}")
    band = page.locator("[data-testid=interval-chart] polygon.band")
    assert band.count() == 1
    # the evidence grew over the two hours: an interval at most 15-minute looks, then now
    looks = page.locator("[data-testid=interval-chart] polyline").get_attribute("data-points")
    assert int(looks) >= 4
    page.goto(f"/ui/deployments/{deployment_id}")
    assert page.locator("[data-testid=traffic-chart] polyline.series").count() == 1
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_label("Reason").fill("looked off in the browser")
    page.get_by_role("button", name="Roll back").click()
    page.wait_for_url(re.compile(r"notice="))
    assert page.get_by_role("status").inner_text().endswith("rolled back")
    assert page.get_by_test_id("traffic").inner_text() == "0 %"
    answer = httpx.get(
        f"{served.url}/deployment/{deployment_id}", headers={"Authorization": f"Bearer {key}"}
    ).json()
    assert answer["status"] in ("rolling_back", "rolled_back")
    assert answer["current_traffic"] == 0.0
    assert answer["reason"] == "looked off in the browser"
    assert page.get_by_test_id("reason").inner_text() == answer["reason"]


@pytest.mark.slow
def test_viewer_sees_no_buttons_and_a_forged_post_is_refused(
    page: Any, served: Served, tmp_path: Path
) -> None:
    _, deployment_id = _deployed(served, tmp_path)
    _login(page, _key(served, Role.VIEWER))
    page.goto(f"/ui/deployments/{deployment_id}")
    assert page.get_by_test_id("traffic").inner_text() == "10 %"
    assert page.get_by_role("button", name="Roll back").count() == 0
    page.goto("/ui/runs")
    assert page.get_by_role("button", name="Start a run").count() == 0
    # a forged form post from the viewer's own logged-in page, CSRF token included
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    status = page.evaluate(
        """async ([url, csrf]) => (await fetch(url, {method: "POST",
            headers: {"Content-Type": "application/x-www-form-urlencoded"},
            body: "csrf_token=" + encodeURIComponent(csrf)})).status""",
        [f"/ui/deployments/{deployment_id}/rollback", csrf],
    )
    assert status == 403
    page.goto(f"/ui/deployments/{deployment_id}")
    assert page.get_by_test_id("traffic").inner_text() == "10 %"


def test_another_tenants_ids_are_404_pages(page: Any, served: Served) -> None:
    run = start_run(served.engine, served.settings, "acme", force_run=True)
    _login(page, _key(served, Role.ADMIN, tenant="globex"))
    response = page.goto(f"/ui/runs/{run.id}")
    assert response.status == 404
    assert page.get_by_role("heading", name="404 · Not Found").is_visible()
    assert page.get_by_role("alert").inner_text().endswith("not found")
