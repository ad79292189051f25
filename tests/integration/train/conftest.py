"""Shared, session-scoped training fixtures: synthetic posts, a dataset, one tiny base.

The tiny base is built once per session from all the posts (as the demo does); the
dataset is the high-engagement subset, written by the real dataset builder. Building
torch things only happens in tests marked ``train``; without torch they skip.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from tuneloop.dataset.builder import BuildOptions, DatasetBuilder
from tuneloop.domain.posts import CollectedPost
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts

POSTS = 500
THRESHOLD = 0.06


def write_dataset(
    out: Path, posts: Iterable[dict[str, Any]], *, threshold: float = THRESHOLD
) -> Path:
    """The collector's output for these posts: train/validation JSONL and a manifest."""
    out.mkdir(parents=True, exist_ok=True)
    with (
        open(out / "train.jsonl", "w", encoding="utf-8") as train,
        open(out / "validation.jsonl", "w", encoding="utf-8") as validation,
        open(out / "examples.meta.jsonl", "w", encoding="utf-8") as meta,
    ):
        builder = DatasetBuilder(
            BuildOptions(threshold=10), {"train": train, "validation": validation, "meta": meta}
        )
        for post in posts:
            rate = post["engagement_rate"]
            if rate is not None and rate >= threshold:
                builder.add(
                    CollectedPost(
                        post["id"], post["persona_id"], post["hook"], post["body"], rate, post["ts"]
                    )
                )
        result = builder.finish()
    (out / "manifest.json").write_text(json.dumps(result.manifest()), encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def synthetic_posts() -> list[dict[str, Any]]:
    return list(generate_posts(SyntheticSpec(posts=POSTS, seed=11)))


@pytest.fixture(scope="session")
def dataset_dir(
    synthetic_posts: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return write_dataset(tmp_path_factory.mktemp("dataset"), synthetic_posts)


@pytest.fixture(scope="session")
def train_hp() -> Any:
    from tuneloop.train.hyperparams import Hyperparameters

    return Hyperparameters(epochs=3, learning_rate=5e-3, batch_size=8, seed=0)


@pytest.fixture(scope="session")
def trained(
    tiny_base: Path, dataset_dir: Path, train_hp: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, list[Any]]:
    """One finished fine-tune of the tiny base (job, steps reported), shared by the tests."""
    from tuneloop.train.local import LocalTrainer

    seen: list[Any] = []
    job = LocalTrainer(tiny_dir=tiny_base).train(
        dataset_dir=dataset_dir,
        base_model="tiny",
        hyperparams=train_hp,
        output_dir=tmp_path_factory.mktemp("runs") / "full",
        on_step=seen.append,
    )
    return job, seen


@pytest.fixture(scope="session")
def tiny_base(
    synthetic_posts: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    pytest.importorskip("torch")
    from tuneloop.train.tiny import build_tiny_base

    pairs = [(post["hook"], post["body"]) for post in synthetic_posts]
    return build_tiny_base(pairs, tmp_path_factory.mktemp("models") / "tiny", seed=0)
