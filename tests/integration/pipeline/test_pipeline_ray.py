"""A whole run with ``training.backend = "ray"``: 2 local Ray workers train, the run registers
the adapter, the offline gate scores it, and the local model server can serve it.

SQLite only (the store is not what this tests) and a small slice of posts: Ray's start and
two torch workers on CI's 2 cores are the cost.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tuneloop.config import Settings
from tuneloop.domain.runs import RunStatus
from tuneloop.pipeline.runner import execute
from tuneloop.pipeline.service import context_for, start_run
from tuneloop.pipeline.steps import STEP_FUNCTIONS
from tuneloop.posts.schema import PostIn
from tuneloop.serving.targets import LocalTarget, target_for
from tuneloop.store import runs as repo
from tuneloop.store.pipeline_models import ModelVersion
from tuneloop.store.posts import upsert_posts
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts
from tuneloop.train.tiny import tiny_base_dir
from tuneloop.wiring import build_container, engine_for, release_engine

pytestmark = [pytest.mark.train, pytest.mark.slow]
pytest.importorskip("torch")
pytest.importorskip("mlflow")
pytest.importorskip("ray.train.torch", reason="the distributed extra (ray[train]) is not installed")

TENANT = "acme"


def test_a_ray_run_trains_registers_and_serves(tmp_path: Path) -> None:
    from tuneloop.train.generate import TextGenerator
    from tuneloop.train.tiny import ensure_tiny_base

    workspace = tmp_path / "workspace"
    settings = Settings(
        workspace=workspace,
        database={"url": f"sqlite:///{workspace / 'tuneloop.db'}"},
        pipeline={"training_data_threshold": 10},
        training={"backend": "ray", "epochs": 2, "batch_size": 8, "ray": {"num_workers": 2}},
    )
    engine = engine_for(settings)
    try:
        rows = list(generate_posts(SyntheticSpec(posts=500, seed=5), now=datetime.now(UTC)))
        upsert_posts(engine, TENANT, (PostIn.model_construct(**row) for row in rows))
        base = tmp_path / "tiny"
        ensure_tiny_base(base, lambda: [(r["hook"], r["body"]) for r in rows])
        shutil.copytree(base, tiny_base_dir(workspace, TENANT))
        run = start_run(engine, settings, TENANT)
        assert (
            execute(
                context_for(
                    engine, settings, run, services=build_container(settings, engine=engine)
                ),
                STEP_FUNCTIONS,
            )
            == RunStatus.PROMOTED  # the tenant's first candidate: champion (bootstrap)
        )
        steps = {s.name: s.output or {} for s in repo.steps_of(engine, TENANT, run.id)}
        trained = steps["train"]
        assert trained["backend"] == "ray"
        losses = trained["losses"]
        half = len(losses) // 2
        assert sum(losses[half:]) / (len(losses) - half) < sum(losses[:half]) / half
        with Session(engine) as session:
            version = session.scalars(select(ModelVersion)).one()
        target = target_for(settings, TENANT, version.model_id, version.version, version)
        assert isinstance(target, LocalTarget)  # an adapter: the local model server's
        text = (
            TextGenerator.load(target.model.base_model, Path(version.adapter_path or ""))
            .generate("Create engaging content", max_new_tokens=12)
            .text
        )
        assert text.strip()
    finally:
        release_engine(settings)
