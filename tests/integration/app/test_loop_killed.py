"""SIGKILL the worker anywhere in the loop: it still closes, and nothing is made twice.

A real worker process (``killable_worker.py``: ``build_worker`` from the environment, the
hosted ``openai`` backend against the fake fine-tuning API) runs two unattended cycles:
a data trigger starts a run that trains, registers and becomes the first champion; fresh
posts start a second run that trains, opens its A/B test, waits, decides and rolls out.
The test only writes the time the worker reads, adds posts, plays the clients (simulated
traffic with a real lift through the real routing and event ingestion) and kills the
worker with SIGKILL at seeded random moments, starting a new one each time. At the end
there is exactly one run, fine-tuning job and registered version per cycle, one A/B test
and one deployment, and the champion alias points at the second version.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import psutil
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tuneloop.app.simulation import lift_for
from tuneloop.domain.clock import ManualClock
from tuneloop.domain.runs import ACTIVE, RunStatus
from tuneloop.experiments.service import list_experiments
from tuneloop.posts.schema import PostIn
from tuneloop.store.deployments import list_deployments
from tuneloop.store.models_registry import champion_of
from tuneloop.store.pipeline_models import ModelVersion, PipelineRun
from tuneloop.store.posts import upsert_posts
from tuneloop.store.runs import list_runs, steps_of
from tuneloop.store.schedules import set_cron
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts
from tuneloop.synthetic.serving import serve_units
from tuneloop.train.hosted.fake import API_KEY, FakeFineTuning, serve
from tuneloop.wiring import Container

pytest.importorskip("mlflow", reason="the train extra (mlflow) is not installed")
pytestmark = pytest.mark.slow

TENANT = "acme"
MODEL = f"tuneloop-{TENANT}"
CHILD = Path(__file__).with_name("killable_worker.py")
SEED = 17
KILLS = {"first cycle": 5, "second run starts": 2, "A/B test and rollout": 5}


class KilledWorker:
    """One worker process at a time, SIGKILLed at seeded random moments and restarted."""

    def __init__(
        self, folder: Path, env: dict[str, str], rng: random.Random, describe: Callable[[], str]
    ) -> None:
        self.describe = describe
        self.clock_file, self.ticks_file = folder / "clock", folder / "ticks"
        self.log, self.env, self.rng = folder / "worker.log", env, rng
        self.kills = 0
        self.kills_left = 0
        self.max_delay = 0.0
        self.kill_at: float | None = None
        self.pid = 0

    def set_time(self, when: datetime) -> None:
        scratch = self.clock_file.with_suffix(".tmp")
        scratch.write_text(when.isoformat())
        os.replace(scratch, self.clock_file)

    def launch(self) -> None:
        """The launcher that forks workers (it imports tuneloop once)."""
        self.log_file = self.log.open("ab")
        self.launcher = subprocess.Popen(
            [sys.executable, str(CHILD), str(self.clock_file), str(self.ticks_file)],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log_file,
            text=True,
        )
        self.start()

    def start(self) -> None:
        assert self.launcher.stdin is not None and self.launcher.stdout is not None
        self.launcher.stdin.write("fork\n")
        self.launcher.stdin.flush()
        self.pid = int(self.launcher.stdout.readline())
        self.kill_at = None

    def alive(self) -> bool:
        return psutil.pid_exists(self.pid) and psutil.Process(self.pid).status() not in (
            psutil.STATUS_ZOMBIE,
            psutil.STATUS_DEAD,
        )

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        while self.alive():
            time.sleep(0.005)

    def plan(self, kills: int, max_delay: float) -> None:
        """Kill ``kills`` times from now on, each up to ``max_delay`` s after a first tick."""
        self.kills_left, self.max_delay = kills, max_delay

    def ticks(self) -> int:
        """Ticks the current process has completed."""
        try:
            pid, count = self.ticks_file.read_text().split()
        except (OSError, ValueError):
            return 0
        return int(count) if int(pid) == self.pid else 0

    def poll(self) -> None:
        if not self.alive():
            pytest.fail(f"the worker died by itself:\n{self.tail()}\n{self.describe()}")
        if self.kills_left and self.kill_at is None and self.ticks() >= 1:
            self.kill_at = time.monotonic() + self.rng.uniform(0.0, self.max_delay)
        if self.kill_at is not None and time.monotonic() >= self.kill_at:
            self.kill()
            self.kills += 1
            self.kills_left -= 1
            self.start()

    def wait_for(self, predicate: Callable[[], bool], what: str, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll()
            if predicate():
                return
            time.sleep(0.02)
        pytest.fail(f"not in {seconds}s: {what} ({self.kills} kills)\n{self.describe()}")

    def tail(self) -> str:
        return self.log.read_text()[-5000:]

    def wait_ticks(self, n: int) -> None:
        """Until the worker (this one or a successor) completed ``n`` ticks from now."""
        pid, start = self.pid, self.ticks()
        self.wait_for(
            lambda: self.ticks() >= (start + n if self.pid == pid else n),
            f"{n} worker ticks",
        )

    def stop(self) -> None:
        if self.pid and self.alive():
            self.kill()
        self.launcher.kill()
        self.launcher.communicate(timeout=10)
        self.log_file.close()


@pytest.fixture
def fake() -> Iterator[tuple[FakeFineTuning, str]]:
    from tuneloop.domain.clock import SystemClock

    fake = FakeFineTuning(
        SystemClock(), process_s=0.1, validate_s=0.1, queue_s=0.1, step_s=0.1, steps_per_epoch=4
    )
    with serve(fake) as base_url:
        yield fake, base_url


def worker_env(container: Container, base_url: str) -> dict[str, str]:
    settings = container.settings
    return dict(os.environ) | {
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "TUNELOOP_WORKSPACE": str(settings.workspace),
        "TUNELOOP_DATABASE__URL": settings.database.url,
        "TUNELOOP_WORKER__TICK_SECONDS": "0.1",
        "TUNELOOP_WORKER__LEASE_SECONDS": "1",
        "TUNELOOP_PIPELINE__A_B_TEST_TRAFFIC_SPLIT": "0.5",
        "TUNELOOP_TRIGGERS__MIN_NEW_EXAMPLES": "30",
        "TUNELOOP_PIPELINE__TRAINING_DATA_THRESHOLD": "30",
        "TUNELOOP_TRIGGERS__DRIFT_DROP": "0.99",
        "TUNELOOP_TRIGGERS__MAX_MODEL_AGE_DAYS": "10000",
        "TUNELOOP_TRIGGERS__COOLDOWN_HOURS": "0",
        "TUNELOOP_EVALUATION__MAX_LOSS_INCREASE": "10",  # the gate is not under test
        "TUNELOOP_TRAINING__BACKEND": "openai",
        "TUNELOOP_TRAINING__EPOCHS": "2",
        "TUNELOOP_TRAINING__OPENAI__POLL_INITIAL_SECONDS": "0.05",
        "TUNELOOP_TRAINING__OPENAI__POLL_MAX_SECONDS": "0.2",
        "TUNELOOP_OPENAI__BASE_URL": base_url,
        "TUNELOOP_OPENAI__API_KEY": API_KEY,
    }


def add_posts(engine: Engine, n: int, *, seed: int, prefix: str, now: datetime) -> None:
    rows = generate_posts(SyntheticSpec(posts=n, seed=seed, weeks=1, id_prefix=prefix), now=now)
    upsert_posts(engine, TENANT, [PostIn.model_construct(**row) for row in rows])


def runs(engine: Engine) -> list[PipelineRun]:
    return sorted(list_runs(engine, TENANT)[0], key=lambda r: r.created_at)


def describe(engine: Engine) -> str:
    """Where the runs stand (for a failure's message)."""
    lines = []
    for run in runs(engine):
        lines.append(f"{run.id} {run.trigger} {run.status} at {run.current_step}: {run.error}")
        for step in steps_of(engine, TENANT, run.id):
            lines.append(f"  {step.name} {step.status} {step.error or ''}")
    return "\n".join(lines)


def opened_test(engine: Engine) -> bool:
    """The second run created its A/B test and waits on it (or ended: the test says how)."""
    found = runs(engine)
    if len(found) < 2:
        return False
    if RunStatus(found[1].status) not in ACTIVE:
        return True
    steps = {s.name: s.status for s in steps_of(engine, TENANT, found[1].id)}
    return steps["experiment"] == "succeeded"


def finished(engine: Engine, count: int) -> bool:
    found = runs(engine)
    return len(found) >= count and all(RunStatus(r.status) not in ACTIVE for r in found)


def test_a_worker_killed_at_random_moments_closes_the_loop_once_per_cycle(
    container: Container, clock: ManualClock, fake: tuple[FakeFineTuning, str], tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    hosted, base_url = fake
    engine = container.engine
    env = worker_env(container, base_url)
    worker = KilledWorker(tmp_path, env, random.Random(SEED), lambda: describe(engine))
    worker.set_time(clock.now())
    # The tenant's schedule (once a year: it never fires here) makes it known to the worker.
    set_cron(engine, TENANT, "0 0 1 1 *", now=clock.now())
    add_posts(engine, 400, seed=5, prefix="post", now=clock.now())
    worker.launch()
    try:
        # 1. A data trigger starts the first run: trained, registered, first champion.
        worker.plan(KILLS["first cycle"], max_delay=2.5)
        worker.wait_for(lambda: finished(engine, 1), "the first run finishes")
        assert [r.status for r in runs(engine)] == ["promoted"]
        # 2. Fresh posts: the second run trains and opens its A/B test.
        at = clock.advance(timedelta(days=8))  # a week of posts after the first collection
        add_posts(engine, 400, seed=9, prefix="fresh", now=at)
        worker.set_time(at)
        worker.plan(KILLS["second run starts"], max_delay=2.5)
        worker.wait_for(lambda: opened_test(engine), "the second run opens its A/B test")
        second = runs(engine)[1]
        assert second.status in ("waiting", "running"), describe(engine)
        # 3. Clients, day by day, until the A/B test decides and the rollout ends.
        worker.plan(KILLS["A/B test and rollout"], max_delay=1.5)
        behaviour = lift_for(f"{MODEL}@2", lift=0.3)
        for day in range(1, 41):
            at = clock.advance(timedelta(hours=24))
            serve_units(
                engine, TENANT, units=2000, seed=day, at=at, behaviour=behaviour, prefix="u"
            )
            worker.set_time(at)
            worker.wait_ticks(2)
            if finished(engine, 2):
                break
        worker.plan(0, 0.0)
        worker.wait_ticks(3)  # nothing else starts once the cycle is over
    finally:
        worker.stop()

    assert worker.kills >= 10
    assert [(r.trigger, r.status) for r in runs(engine)] == [("data", "promoted")] * 2
    assert hosted.creates() == 2  # one fine-tuning job per cycle, resumed across kills
    assert len(list_experiments(engine, TENANT)) == 1
    assert len(list_deployments(engine, TENANT)) == 1
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 2
    mlflow = MlflowClient(tracking_uri=container.settings.mlflow_tracking_uri)
    assert len(mlflow.search_model_versions(f"name='{MODEL}'")) == 2
    champion = champion_of(engine, TENANT)
    assert champion is not None and champion.version == "2"
    alias = container.tracker.get_alias(TENANT, "champion")
    assert alias is not None and alias.version == 2
