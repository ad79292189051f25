"""The hosted backend: fine-tuning through an OpenAI-compatible API, one paid job per run.

Usage (``tuneloop.train.backends.build_trainer`` builds it from settings)::

    trainer = HostedTrainer(api, tenant_id="acme", run_id="run-1", clock=SystemClock())
    job = trainer.train(dataset_dir=..., base_model="gpt-4o-mini-2024-07-18",
                        hyperparams=Hyperparameters(), output_dir=workdir / "train")
    job.details["fine_tuned_model"]   # "ft:gpt-4o-mini-2024-07-18:org:tuneloop:abc123"

Exactly one job per run: the job carries ``metadata`` naming the tenant and the run, and its
id is written to ``output_dir/hosted_job.json`` as soon as it is known. Before creating, the
trainer looks for the run's job by that id, then by metadata, and it creates and looks up in
one retried unit, so neither a crash between "created" and "recorded" nor a lost response to
the create request starts a second job. Polling backs off while nothing changes (with
jitter), waits out an open breaker or a provider outage instead of failing, and fails the
job after ``stuck_after`` without progress (cancelling it, so it stops costing). A stop
request returns an ``"aborted"`` job and leaves the provider's job alone: an abort cancels it
in cleanup (:meth:`HostedTrainer.cancel`), an interruption lets the next attempt follow it.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneloop.domain.clock import Clock
from tuneloop.errors import InvalidInputError, TrainingError
from tuneloop.resilience.breaker import CircuitOpenError
from tuneloop.train.hosted.api import HostedAPI, HostedAPIError, Sleep
from tuneloop.train.hosted.files import load_state, save_state, upload_dataset
from tuneloop.train.hosted.follow import Follower
from tuneloop.train.hosted.progress import phase
from tuneloop.train.hyperparams import AUTO, Hyperparameters
from tuneloop.train.port import AbortPolicy, OnStep, ShouldStop, TrainingJob
from tuneloop.train.workdir import finished_job

log = logging.getLogger(__name__)
TENANT_KEY, RUN_KEY = "tuneloop_tenant", "tuneloop_run"


@dataclass(frozen=True)
class PollPolicy:
    initial_s: float = 5.0
    max_s: float = 60.0
    growth: float = 1.5
    jitter: float = 0.2  # ± this share of the interval
    stuck_after_s: float = 7200.0


class HostedTrainer:
    """Fine-tunes through the provider's API; see the module docstring."""

    backend = "openai"

    def __init__(
        self,
        api: HostedAPI,
        *,
        tenant_id: str,
        run_id: str,
        clock: Clock,
        sleep: Sleep = time.sleep,
        suffix: str | None = "tuneloop",
        learning_rate_multiplier: float | str = AUTO,
        poll: PollPolicy = PollPolicy(),
        price_per_million_tokens: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.api, self.tenant_id, self.run_id = api, tenant_id, run_id
        self.clock, self.sleep, self.poll = clock, sleep, poll
        self.suffix, self.lr_multiplier = suffix, learning_rate_multiplier
        self.price = price_per_million_tokens
        self.rng = rng or random.Random()

    @property
    def metadata(self) -> dict[str, str]:
        return {TENANT_KEY: self.tenant_id, RUN_KEY: self.run_id}

    def train(
        self,
        *,
        dataset_dir: Path,
        base_model: str,
        hyperparams: Hyperparameters,
        output_dir: Path,
        resume: bool = True,
        on_step: OnStep | None = None,
        should_stop: ShouldStop | None = None,
        on_abort: AbortPolicy = "keep_checkpoints",
    ) -> TrainingJob:
        if not (dataset_dir / "train.jsonl").is_file():
            raise InvalidInputError(f"{dataset_dir} has no train.jsonl")
        output_dir.mkdir(parents=True, exist_ok=True)
        if (done := finished_job(output_dir)) is not None:
            return done
        stop = should_stop or (lambda: False)
        started = self.clock.now()
        job = self._locate(output_dir)
        if job is None:
            files = self._wait_out(lambda: upload_dataset(self, dataset_dir, output_dir, stop))
            if files is None or stop():
                return self._aborted(base_model, hyperparams, output_dir, None, started)
            job = self._wait_out(lambda: self._find_or_create(base_model, hyperparams, files))
            if job is None:
                return self._aborted(base_model, hyperparams, output_dir, None, started)
        save_state(output_dir, {"job_id": job.id})
        follower = Follower(self, job, hyperparams, output_dir, on_step or (lambda p: None))
        return follower.run(stop, started)

    def find_job(self) -> Any | None:
        """The run's job at the provider, found by its metadata; None if it has none."""
        return self.api.call("find job", self._find_raw)

    def cancel(self, output_dir: Path | None = None) -> str | None:
        """Cancel the run's job unless it has ended; returns the id cancelled, if any."""
        job_id = load_state(output_dir).get("job_id") if output_dir else None
        if job_id:
            job = self.api.call(
                "retrieve job", lambda: self.client.fine_tuning.jobs.retrieve(job_id)
            )
        else:
            job = self.find_job()
        if job is None or phase(job.status) in ("succeeded", "failed", "cancelled"):
            return None
        self.api.call("cancel job", lambda: self.client.fine_tuning.jobs.cancel(job.id))
        return str(job.id)

    @property
    def client(self) -> Any:
        return self.api.client

    def jittered(self, seconds: float) -> float:
        return seconds * (1 + self.poll.jitter * (2 * self.rng.random() - 1))

    def _locate(self, output_dir: Path) -> Any | None:
        job_id = load_state(output_dir).get("job_id")
        if job_id:
            return self._wait_out(
                lambda: self.api.call(
                    "retrieve job", lambda: self.client.fine_tuning.jobs.retrieve(job_id)
                )
            )
        return self._wait_out(self.find_job)

    def _find_raw(self) -> Any | None:
        after: str | None = None
        while True:
            extra = {"after": after} if after else {}
            page = self.client.fine_tuning.jobs.list(metadata=self.metadata, limit=100, **extra)
            for job in page.data:  # the filter is the provider's; check it ourselves too
                if (job.metadata or {}).get(RUN_KEY) == self.run_id and (job.metadata or {}).get(
                    TENANT_KEY
                ) == self.tenant_id:
                    return job
            if not page.has_more or not page.data:
                return None
            after = page.data[-1].id

    def _find_or_create(self, base: str, hp: Hyperparameters, files: dict[str, str | None]) -> Any:
        hyper: dict[str, Any] = {
            "n_epochs": hp.epochs,
            "batch_size": hp.batch_size,
            "learning_rate_multiplier": self.lr_multiplier,
        }
        extra: dict[str, Any] = {}
        if files.get("validation_file"):
            extra["validation_file"] = files["validation_file"]
        if self.suffix:
            extra["suffix"] = self.suffix

        def unit() -> Any:  # one retried unit: a retry after a lost response finds the job
            return self._find_raw() or self.client.fine_tuning.jobs.create(
                model=base,
                training_file=files["training_file"],
                method={"type": "supervised", "supervised": {"hyperparameters": hyper}},
                seed=hp.seed,
                metadata=self.metadata,
                **extra,
            )

        return self.api.call("create job", unit)

    def _wait_out(self, fn: Any) -> Any:
        """Run ``fn`` until the provider answers: an open breaker or an outage is waited out
        (the run resumes rather than failing the cycle); a refusal is a training error."""
        began = self.clock.now()
        while True:
            try:
                return fn()
            except CircuitOpenError as exc:
                pause = max(1.0, exc.retry_after_s)
            except HostedAPIError as exc:
                if not exc.transient:
                    raise TrainingError(str(exc)) from exc
                pause = self.poll.max_s
            if (self.clock.now() - began).total_seconds() >= self.poll.stuck_after_s:
                raise TrainingError(f"the fine-tuning API did not answer for {self._stuck_text}")
            log.warning("fine-tuning API unavailable; trying again in %.0f s", pause)
            self.sleep(self.jittered(pause))

    @property
    def _stuck_text(self) -> str:
        return f"{self.poll.stuck_after_s / 60:g} minutes"

    def _aborted(
        self, base: str, hp: Hyperparameters, output_dir: Path, job_id: str | None, started: Any
    ) -> TrainingJob:
        return TrainingJob(
            backend=self.backend,
            status="aborted",
            base_model=base,
            output_dir=output_dir,
            hyperparams=hp,
            adapter_path=None,
            external_id=job_id,
            device="hosted",
            duration_seconds=(self.clock.now() - started).total_seconds(),
        )
