"""The hosted backend against the fake fine-tuning API, over HTTP, through the real SDK.

Time is a manual clock shared by the fake (a job's life) and the trainer (its sleeps), so a
two-hour job and a 120 s breaker window pass in milliseconds. Nothing is patched: faults are
the fake's, injected per route or at a seeded rate.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hosted_world import hosted_world
from openai import OpenAI

from tuneloop.errors import TrainingError
from tuneloop.resilience.breaker import OPENAI_BREAKER, CircuitBreaker
from tuneloop.train.hosted.api import HostedAPI
from tuneloop.train.hosted.fake import API_KEY
from tuneloop.train.hosted.files import STATE
from tuneloop.train.hosted.follow import MODEL_DIR, MODEL_FILE
from tuneloop.train.hosted.trainer import HostedTrainer, PollPolicy
from tuneloop.train.hyperparams import Hyperparameters


def test_a_job_is_created_once_followed_and_mapped(tmp_path: Path) -> None:
    with hosted_world(tmp_path) as world:
        job = world.train()
        assert job.status == "succeeded"
        assert len(world.fake.jobs) == 1
        (remote,) = world.fake.jobs.values()
        assert remote.body["metadata"] == {"tuneloop_tenant": "acme", "tuneloop_run": "run-1"}
        assert remote.body["seed"] == 7
        assert remote.body["method"]["supervised"]["hyperparameters"]["n_epochs"] == 3
        assert remote.body["validation_file"] is not None
        fine_tuned = job.details["fine_tuned_model"]
        assert fine_tuned.startswith("ft:gpt-4o-mini-2024-07-18:")
        assert job.external_id == remote.body["id"]
        # every step, in order, with the provider's extra numbers; the loss fell
        assert [s.step for s in world.steps] == list(range(1, 13))
        assert world.steps[-1].loss < world.steps[0].loss
        assert "train_mean_token_accuracy" in world.steps[0].metrics
        assert "valid_loss" in world.steps[3].metrics
        gap = world.fake.validation_gap(remote.body["id"])  # less on more training examples
        assert job.validation_loss == pytest.approx(2.5 * 0.9**12 + gap, abs=1e-4)
        assert [c["step"] for c in job.details["checkpoints"]] == [4, 8, 12]
        assert job.tokens_seen == 12_000
        assert job.details["estimated_cost_usd"] == pytest.approx(12_000 * 3.0 / 1e6)
        record = json.loads((tmp_path / "train" / MODEL_DIR / MODEL_FILE).read_text())
        assert record["fine_tuned_model"] == fine_tuned
        # the model it produced answers on the provider's chat endpoint
        client = OpenAI(base_url=world.base_url, api_key=API_KEY, max_retries=0)
        answer = client.chat.completions.create(
            model=fine_tuned, messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content == f"{fine_tuned} says: hi"
        # a second call returns the finished job without asking the provider anything
        before = len(world.fake.log)
        assert world.train().external_id == job.external_id
        assert len(world.fake.log) == before


def test_a_lost_create_response_does_not_create_a_second_job(tmp_path: Path) -> None:
    with hosted_world(tmp_path) as world:
        world.fake.inject("POST /fine_tuning/jobs", "lost")
        job = world.train()
        assert job.status == "succeeded"
        assert world.fake.creates() == 1  # the retry looked the job up instead
        assert len(world.fake.jobs) == 1


def test_a_crash_between_created_and_recorded_finds_the_same_job(tmp_path: Path) -> None:
    with hosted_world(tmp_path) as world:
        polls = iter(range(100))
        first = world.train(should_stop=lambda: next(polls) >= 2)  # stops while polling
        assert first.status == "aborted"
        (tmp_path / "train" / STATE).unlink()  # as if it died before recording the id
        job = world.train(world.trainer())  # a new process: nothing in memory either
        assert job.status == "succeeded"
        assert len(world.fake.jobs) == 1
        assert world.fake.creates() == 1


def test_transient_faults_are_retried_honouring_retry_after(tmp_path: Path) -> None:
    with hosted_world(tmp_path) as world:
        world.fake.inject("POST /files", "429", "500")
        world.fake.inject("POST /fine_tuning/jobs", "503")
        start = world.clock.now()
        job = world.train()
        assert job.status == "succeeded"
        assert len(world.fake.jobs) == 1
        statuses = [s for m, p, s in world.fake.log if (m, p) == ("POST", "/files")]
        assert statuses[:3] == [429, 500, 200]
        assert (world.clock.now() - start).total_seconds() > 2  # waited the Retry-After


def test_the_breaker_opens_waits_and_closes_after_a_good_probe(tmp_path: Path) -> None:
    with hosted_world(tmp_path) as world:
        # The breaker opens on a failure rate (at least half of the last 60 s of calls, and at
        # least 3 failures): nine calls succeeded before these faults, so it takes ten.
        world.fake.inject("GET /fine_tuning/jobs/{id}", *(["503"] * 9), "500")
        job = world.train()
        assert job.status == "succeeded"  # the run waited instead of failing
        assert world.transitions[:3] == [
            ("CLOSED", "OPEN"),
            ("OPEN", "HALF_OPEN"),
            ("HALF_OPEN", "OPEN"),  # the first probe met a fault still injected
        ]
        assert world.transitions[-1] == ("HALF_OPEN", "CLOSED")
        assert len(world.fake.jobs) == 1


def test_thirty_percent_faults_over_a_whole_run(tmp_path: Path) -> None:
    with hosted_world(tmp_path, fault_rate=0.3, seed=11) as world:
        job = world.train()
        assert job.status == "succeeded"
        assert len(world.fake.jobs) == 1
        failures = [s for _, _, s in world.fake.log if s >= 429]
        assert len(failures) >= 5  # the faults really happened
        assert [s.step for s in world.steps] == list(range(1, 13))


def test_an_error_object_becomes_the_failure_reason(tmp_path: Path) -> None:
    with hosted_world(tmp_path) as world:
        world.fake.inject("GET /fine_tuning/jobs/{id}", "failed")
        with pytest.raises(TrainingError, match="invalid_training_file: The job failed"):
            world.train()


def test_an_empty_error_object_is_still_a_failure(tmp_path: Path) -> None:
    with hosted_world(tmp_path) as world:
        world.fake.inject("GET /fine_tuning/jobs/{id}", "failed_empty")
        with pytest.raises(TrainingError, match="empty error object"):
            world.train()


def test_an_unknown_status_is_neither_an_end_nor_a_crash(tmp_path: Path) -> None:
    with hosted_world(tmp_path) as world:
        world.fake.inject("GET /fine_tuning/jobs/{id}", "status")
        world.fake.inject("shuffle events", "yes", "yes")
        job = world.train()
        assert job.status == "succeeded"
        assert [s.step for s in world.steps] == list(range(1, 13))


def test_a_job_without_progress_fails_as_stuck_and_is_cancelled(tmp_path: Path) -> None:
    with hosted_world(tmp_path) as world:
        world.fake.inject("GET /fine_tuning/jobs/{id}", "hang")
        with pytest.raises(TrainingError, match=r"no progress for 30 minutes.*cancelled"):
            world.train(world.trainer(stuck_after_s=1800))
        (remote,) = world.fake.jobs.values()
        assert remote.ended == "cancelled"


def test_a_paused_job_counts_as_stuck_when_it_stays_paused(tmp_path: Path) -> None:
    with hosted_world(tmp_path) as world:
        trainer = world.trainer(stuck_after_s=1800)
        seen: list[str] = []

        def pause_once() -> bool:  # the provider's own pause call, through the SDK
            if not seen and world.fake.jobs:
                (job_id,) = world.fake.jobs
                if world.fake.view(job_id)["status"] == "running":
                    seen.append(trainer.client.fine_tuning.jobs.pause(job_id).status)
            return False

        with pytest.raises(TrainingError, match=r"no progress .*\(status paused\)"):
            world.train(trainer, should_stop=pause_once)
        assert seen == ["paused"]


def test_abort_leaves_the_job_to_cleanup_which_cancels_it(tmp_path: Path) -> None:
    with hosted_world(tmp_path) as world:
        polls = iter(range(100))
        job = world.train(should_stop=lambda: next(polls) >= 3)
        assert job.status == "aborted"
        (remote,) = world.fake.jobs.values()
        assert remote.ended is None
        assert world.trainer().cancel(tmp_path / "train") == remote.body["id"]
        assert remote.ended == "cancelled"
        assert world.trainer().cancel(None) is None  # found by metadata, already ended


def test_a_job_cancelled_elsewhere_fails_the_step(tmp_path: Path) -> None:
    with hosted_world(tmp_path) as world:
        trainer = world.trainer()

        def cancel_elsewhere() -> bool:
            if world.fake.jobs:
                (job_id,) = world.fake.jobs
                if world.fake.view(job_id)["status"] == "running":
                    world.fake.jobs[job_id].ended = "cancelled"
            return False

        with pytest.raises(TrainingError, match="cancelled outside tuneloop"):
            world.train(trainer, should_stop=cancel_elsewhere)


KILLED_CHILD = """
import sys, random
from pathlib import Path
from tuneloop.domain.clock import SystemClock
from tuneloop.resilience.breaker import OPENAI_BREAKER, CircuitBreaker
from tuneloop.train.hosted.api import HostedAPI
from tuneloop.train.hosted.trainer import HostedTrainer, PollPolicy
from tuneloop.train.hyperparams import Hyperparameters

base_url, root = sys.argv[1], Path(sys.argv[2])
api = HostedAPI(base_url=base_url, api_key="sk-fake-fine-tuning",
                breaker=CircuitBreaker("openai", OPENAI_BREAKER))
trainer = HostedTrainer(api, tenant_id="acme", run_id="run-1", clock=SystemClock(),
                        poll=PollPolicy(initial_s=0.05, max_s=0.1))
trainer.train(dataset_dir=root / "dataset", base_model="gpt-4o-mini-2024-07-18",
              hyperparams=Hyperparameters(epochs=3, seed=7), output_dir=root / "train")
"""


@pytest.mark.slow
def test_sigkill_while_polling_then_rerun_follows_the_same_job(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from hosted_world import write_dataset

    from tuneloop.domain.clock import SystemClock
    from tuneloop.train.hosted.fake import FakeFineTuning, serve

    fake = FakeFineTuning(SystemClock(), process_s=0.1, validate_s=0.1, queue_s=0.1, step_s=0.2)
    write_dataset(tmp_path / "dataset")
    with serve(fake) as base_url:
        child = subprocess.Popen(
            [sys.executable, "-c", KILLED_CHILD, base_url, str(tmp_path)],
            env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)},
        )
        deadline = time.monotonic() + 60
        while not any(fake.view(j)["_step"] >= 2 for j in list(fake.jobs)):
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        (job_id,) = fake.jobs
        assert fake.view(job_id)["status"] == "running"  # killed mid-job
        api = HostedAPI(
            base_url=base_url, api_key=API_KEY, breaker=CircuitBreaker("openai", OPENAI_BREAKER)
        )
        rerun = HostedTrainer(
            api,
            tenant_id="acme",
            run_id="run-1",
            clock=SystemClock(),
            poll=PollPolicy(initial_s=0.05, max_s=0.1),
        )
        job = rerun.train(
            dataset_dir=tmp_path / "dataset",
            base_model="gpt-4o-mini-2024-07-18",
            hyperparams=Hyperparameters(epochs=3, seed=7),
            output_dir=tmp_path / "train",
        )
    assert job.status == "succeeded" and job.external_id == job_id
    assert fake.creates() == 1 and len(fake.jobs) == 1
    assert len(job.steps) == 12  # the rerun read every step from the provider's events


def test_the_backend_built_from_settings_counts_on_the_process_breaker(tmp_path: Path) -> None:
    """What /health and /metrics read: the process's `openai` breaker and its counters."""
    from prometheus_client import REGISTRY
    from pydantic import SecretStr

    from tuneloop.config import Settings
    from tuneloop.resilience.registry import breaker_state, reset_process_breakers
    from tuneloop.train.backends import build_trainer

    def failures() -> float:
        return REGISTRY.get_sample_value("fine_tuning_openai_failures_total") or 0.0

    reset_process_breakers()
    try:
        with hosted_world(tmp_path) as world:
            settings = Settings(
                workspace=tmp_path,
                openai={"base_url": world.base_url, "api_key": SecretStr(API_KEY)},
                training={"backend": "openai", "stuck_after_minutes": 10},
            )
            trainer = build_trainer(
                settings, tenant_id="acme", run_id="run-1", clock=world.clock, sleep=world.sleep
            )
            world.fake.inject("GET /fine_tuning/jobs", "503", "503", "503")
            before = failures()
            with pytest.raises(TrainingError, match="did not answer for 10 minutes"):
                world.train(trainer)  # type: ignore[arg-type]
            assert breaker_state("openai") == "OPEN"  # the real-time 120 s have not passed
            assert failures() - before == 3
            assert world.fake.jobs == {}  # nothing was created while the provider was down
    finally:
        reset_process_breakers()
