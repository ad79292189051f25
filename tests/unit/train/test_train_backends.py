"""build_trainer: the one place that turns training.backend into a Trainer."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tuneloop.config import Settings
from tuneloop.train.backends import base_model_for, build_trainer


def settings_for(tmp_path: Path, backend: str, **training: object) -> Settings:
    return Settings(workspace=tmp_path, training={"backend": backend, **training})


def test_local_is_the_default(tmp_path: Path) -> None:
    trainer = build_trainer(Settings(workspace=tmp_path), tenant_id="acme", run_id="r1")
    assert trainer.backend == "local"


def test_openai_builds_the_hosted_trainer_for_this_run(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "openai", stuck_after_minutes=30)
    trainer = build_trainer(settings, tenant_id="acme", run_id="r1")
    assert trainer.backend == "openai"
    assert trainer.metadata == {"tuneloop_tenant": "acme", "tuneloop_run": "r1"}  # type: ignore[attr-defined]
    assert trainer.poll.stuck_after_s == 1800  # type: ignore[attr-defined]
    assert base_model_for(settings) == "gpt-4o-mini-2024-07-18"  # 'tiny' means nothing there
    named = settings_for(tmp_path, "openai", base_model="gpt-4.1-mini-2025-04-14")
    assert base_model_for(named) == "gpt-4.1-mini-2025-04-14"


def test_ray_builds_the_ray_trainer_with_its_workers(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    settings = settings_for(tmp_path, "ray", ray={"num_workers": 3})
    trainer = build_trainer(settings, tenant_id="acme", run_id="r1")
    assert trainer.backend == "ray"
    assert trainer.num_workers == 3  # type: ignore[attr-defined]
    assert base_model_for(settings) == "tiny"


def test_an_unknown_backend_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="'local', 'openai' or 'ray'"):
        settings_for(tmp_path, "sagemaker")
