"""A hosted-training world for tests: the fake API over HTTP, a manual clock, a dataset."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tuneloop.domain.clock import ManualClock
from tuneloop.resilience.breaker import OPENAI_BREAKER, BreakerState, CircuitBreaker
from tuneloop.train.hosted.api import HostedAPI
from tuneloop.train.hosted.fake import API_KEY, FakeFineTuning, serve
from tuneloop.train.hosted.trainer import HostedTrainer, PollPolicy
from tuneloop.train.hyperparams import Hyperparameters
from tuneloop.train.port import StepProgress, TrainingJob


def write_dataset(folder: Path, n_train: int = 12, n_valid: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train.jsonl", n_train), ("validation.jsonl", n_valid)):
        lines = [
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": f"Create engaging content {i}"},
                        {"role": "assistant", "content": f"A hook worth reading, number {i}"},
                    ]
                }
            )
            for i in range(n)
        ]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@dataclass
class World:
    fake: FakeFineTuning
    clock: ManualClock
    base_url: str
    root: Path
    breaker: CircuitBreaker
    transitions: list[tuple[str, str]] = field(default_factory=list)
    steps: list[StepProgress] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))

    def trainer(self, *, run_id: str = "run-1", stuck_after_s: float = 3600.0) -> HostedTrainer:
        api = HostedAPI(
            base_url=self.base_url,
            api_key=API_KEY,
            breaker=self.breaker,
            timeout_s=5.0,
            sleep=self.sleep,
            rng=random.Random(1),
        )
        return HostedTrainer(
            api,
            tenant_id="acme",
            run_id=run_id,
            clock=self.clock,
            sleep=self.sleep,
            poll=PollPolicy(initial_s=5.0, max_s=30.0, stuck_after_s=stuck_after_s),
            price_per_million_tokens=3.0,
            rng=random.Random(2),
        )

    def train(self, trainer: HostedTrainer | None = None, **kwargs: object) -> TrainingJob:
        trainer = trainer or self.trainer()
        return trainer.train(
            dataset_dir=write_dataset(self.root / "dataset"),
            base_model="gpt-4o-mini-2024-07-18",
            hyperparams=Hyperparameters(epochs=3, seed=7),
            output_dir=self.root / "train",
            on_step=self.steps.append,
            **kwargs,  # type: ignore[arg-type]
        )


@contextmanager
def hosted_world(root: Path, **fake_options: object) -> Iterator[World]:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    fake = FakeFineTuning(clock, **fake_options)  # type: ignore[arg-type]
    transitions: list[tuple[str, str]] = []

    def record(old: BreakerState, new: BreakerState) -> None:
        transitions.append((old.value, new.value))

    breaker = CircuitBreaker(
        "openai", OPENAI_BREAKER, clock=lambda: clock.now().timestamp(), on_transition=record
    )
    with serve(fake) as base_url:
        yield World(fake, clock, base_url, root, breaker, transitions)
