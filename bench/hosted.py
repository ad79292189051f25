"""Hosted training: the orchestration's cost per job against the fake fine-tuning API.

One hosted job (the fake, over real HTTP, through the official SDK) is followed to its end
by ``HostedTrainer`` with a manual clock, so the job's hours pass instantly and what is
timed is our own work: uploads, lookups, polls, events, checkpoints. Measured, same run:

  (a) API calls per job (retries included) and polling cycles, for the default polling
      policy (5 s growing to 60 s) over a job of --steps steps of --step-seconds each;
  (b) wall time per polling cycle (retrieve + events, parsed and mapped) vs a bare
      ``client.fine_tuning.jobs.retrieve`` round trip on the same server: ratio = ours / bare;
  (c) the time from the job's success (as the trainer sees it) to the finished
      ``TrainingJob`` (checkpoints listed, the model record written).

    python bench/hosted.py
    python bench/hosted.py --steps 200 --step-seconds 30 --repeat 5
"""

from __future__ import annotations

import argparse
import itertools
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tuneloop.domain.clock import ManualClock
from tuneloop.resilience.breaker import OPENAI_BREAKER, CircuitBreaker
from tuneloop.train.hosted.api import HostedAPI
from tuneloop.train.hosted.fake import API_KEY, FakeFineTuning, serve
from tuneloop.train.hosted.trainer import HostedTrainer
from tuneloop.train.hyperparams import Hyperparameters


def dataset(folder: Path, n: int = 50) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    line = '{"messages": [{"role": "user", "content": "Create engaging content"}, '
    line += '{"role": "assistant", "content": "A hook"}]}'
    for name in ("train.jsonl", "validation.jsonl"):
        (folder / name).write_text("\n".join([line] * n) + "\n", encoding="utf-8")
    return folder


def one_job(
    base_url: str, fake: FakeFineTuning, clock: ManualClock, root: Path
) -> dict[str, float]:
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(time.perf_counter())
        clock.advance(timedelta(seconds=seconds))

    breaker = CircuitBreaker("openai", OPENAI_BREAKER, clock=lambda: clock.now().timestamp())
    api = HostedAPI(base_url=base_url, api_key=API_KEY, breaker=breaker, sleep=sleep)
    trainer = HostedTrainer(
        api, tenant_id="bench", run_id=root.name, clock=clock, sleep=sleep, rng=random.Random(0)
    )
    started = time.perf_counter()
    job = trainer.train(
        dataset_dir=dataset(root / "dataset"),
        base_model="gpt-4o-mini",
        hyperparams=Hyperparameters(epochs=3),
        output_dir=root / "train",
    )
    ended = time.perf_counter()
    assert job.status == "succeeded"
    gaps = [b - a for a, b in itertools.pairwise(polls)]
    return {
        "api_calls": float(api.calls),
        "cycles": float(len(polls)),
        "cycle_ms": 1000 * sorted(gaps)[len(gaps) // 2] if gaps else 0.0,
        "finish_ms": 1000 * (ended - polls[-1]) if polls else 0.0,
        "total_ms": 1000 * (ended - started),
    }


def bare_retrieve_ms(base_url: str, job_id: str, n: int = 50) -> float:
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)
    times = []
    for _ in range(n):
        begin = time.perf_counter()
        client.fine_tuning.jobs.retrieve(job_id)
        times.append(time.perf_counter() - begin)
    return 1000 * sorted(times)[n // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps of the job")
    parser.add_argument("--step-seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    fake = FakeFineTuning(clock, step_s=args.step_seconds, steps_per_epoch=max(1, args.steps // 3))
    with tempfile.TemporaryDirectory() as tmp, serve(fake) as base_url:
        runs = [one_job(base_url, fake, clock, Path(tmp) / f"r{i}") for i in range(args.repeat)]
        bare = bare_retrieve_ms(base_url, next(iter(fake.jobs)))
    best = min(runs, key=lambda r: r["total_ms"])
    print(f"job: {args.steps} steps x {args.step_seconds:g} s (fake time), best of {args.repeat}")
    print(f"  API calls per job      {best['api_calls']:.0f} ({best['cycles']:.0f} polling cycles)")
    print(
        f"  per polling cycle      {best['cycle_ms']:.2f} ms   bare retrieve {bare:.2f} ms"
        f"   ratio {best['cycle_ms'] / bare:.2f}x"
    )
    print(f"  success -> job record  {best['finish_ms']:.1f} ms")
    print(f"  whole job, our side    {best['total_ms']:.0f} ms")


if __name__ == "__main__":
    main()
