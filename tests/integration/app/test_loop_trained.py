"""The whole loop with real training (tiny model, one epoch): a first champion, fresh
posts, a trained challenger carried by its run through A/B test and rollout to champion,
moved only by ``advance_runs`` / ``tick_rollouts`` on a manual clock."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tuneloop.app import runs as app_runs
from tuneloop.app.simulation import drive_run, lift_for
from tuneloop.config import Settings
from tuneloop.domain.clock import ManualClock
from tuneloop.domain.runs import RunStatus
from tuneloop.pipeline.outputs import DecideOutput, RolloutOutput
from tuneloop.posts.schema import PostIn
from tuneloop.store import runs as repo
from tuneloop.store.posts import upsert_posts
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts
from tuneloop.wiring import Container, build_container

pytest.importorskip("torch", reason="the train extra (torch) is not installed")
pytestmark = [pytest.mark.train, pytest.mark.slow]

TENANT = "acme"


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tuneloop.train.tiny import ensure_tiny_base

    folder = tmp_path_factory.mktemp("tiny-loop") / "base"
    posts = [(p["hook"], p["body"]) for p in generate_posts(SyntheticSpec(posts=1600, seed=5))]
    return ensure_tiny_base(folder, lambda: posts)


def _posts(engine: Engine, n: int, *, seed: int, prefix: str) -> None:
    spec = SyntheticSpec(posts=n, seed=seed, weeks=1, id_prefix=prefix)
    rows = generate_posts(spec, now=datetime.now(UTC))
    upsert_posts(engine, TENANT, [PostIn.model_construct(**row) for row in rows])


@pytest.fixture
def trained_container(
    container: Container, settings: Settings, engine: Engine, tiny_base: Path, clock: ManualClock
) -> Container:
    shutil.copytree(tiny_base, settings.workspace / "models" / f"tiny-{TENANT}")
    config = container.settings
    training = config.training.model_copy(update={"epochs": 1})
    # The gate is not under test here: any trained candidate may go on to its A/B test.
    evaluation = config.evaluation.model_copy(update={"max_loss_increase": 10.0})
    config = config.model_copy(update={"training": training, "evaluation": evaluation})
    return build_container(config, clock=clock, engine=engine)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_trained_challenger_goes_all_the_way_to_champion(
    trained_container: Container, clock: ManualClock
) -> None:
    c = trained_container
    _posts(c.engine, 1200, seed=5, prefix="post")
    first = app_runs.start_or_continue(c, tenant=TENANT, trigger="schedule")
    assert first.status == RunStatus.PROMOTED, first.run.error

    _posts(c.engine, 400, seed=9, prefix="fresh")
    second = app_runs.start_or_continue(c, tenant=TENANT, trigger="data")
    assert second.status == RunStatus.WAITING, second.run.error
    assert repo.get_run(c.engine, TENANT, second.run.id).trigger == "data"
    candidate = f"tuneloop-{TENANT}@2"
    final = drive_run(
        c, clock, tenant=TENANT, run_id=second.run.id, behaviour=lift_for(candidate, lift=0.3)
    )
    assert final == RunStatus.PROMOTED
    alias = c.tracker.get_alias(TENANT, "champion")
    assert alias is not None and alias.version == 2
    view = app_runs.status(c, tenant=TENANT, pipeline_id=second.run.id)
    assert DecideOutput.of(view.evidence).recommendation == "promote"
    assert RolloutOutput.of(view.evidence).traffic == 1.0
    assert view.progress["deployment"] == "completed" and view.trigger == "data"
