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

import json
import logging
import random
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tuneloop.domain.clock import Clock
from tuneloop.errors import ExternalServiceError, InvalidInputError, TrainingError
from tuneloop.resilience.breaker import CircuitOpenError
from tuneloop.train.hosted.api import HostedAPI, HostedAPIError, Sleep
from tuneloop.train.hosted.files import load_state, save_state, upload_dataset
from tuneloop.train.hosted.progress import EventLog, failure_reason, numbers, phase
from tuneloop.train.hyperparams import AUTO, Hyperparameters
from tuneloop.train.port import AbortPolicy, OnStep, ShouldStop, TrainingJob
from tuneloop.train.workdir import JOB, finished_job

log = logging.getLogger(__name__)
MODEL_DIR = "hosted-model"
MODEL_FILE = "hosted_model.json"
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
        follower = _Follower(self, job, hyperparams, output_dir, on_step or (lambda p: None))
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


class _Follower:
    """Polls one job to its end, reporting steps as they appear."""

    def __init__(
        self, owner: HostedTrainer, job: Any, hp: Hyperparameters, output_dir: Path, on_step: OnStep
    ) -> None:
        self.owner, self.job, self.hp = owner, job, hp
        self.output_dir, self.on_step = output_dir, on_step
        self.events = EventLog()
        self.warned: set[str] = set()

    def run(self, stop: ShouldStop, started: Any) -> TrainingJob:
        owner, poll = self.owner, self.owner.poll
        signature: tuple[Any, ...] | None = None
        last_change = owner.clock.now()
        interval = poll.initial_s
        while True:
            if stop():
                return owner._aborted(
                    self.job.model, self.hp, self.output_dir, self.job.id, started
                )
            try:
                self.job = owner.api.call(
                    "retrieve job", lambda: owner.client.fine_tuning.jobs.retrieve(self.job.id)
                )
                for progress in self.events.add(self._new_events(), n_epochs=self._epochs()):
                    self.on_step(progress)
            except CircuitOpenError as exc:
                log.warning("openai breaker open; polling job %s again later", self.job.id)
                interval = max(interval, exc.retry_after_s)
            except HostedAPIError as exc:
                if not exc.transient:
                    raise TrainingError(str(exc)) from exc
            else:
                status = str(self.job.status)
                done = self._decide(status)
                if done is not None:
                    return done
                now_signature = (status, self.events.last_step, self.job.trained_tokens)
                if now_signature != signature:
                    signature, last_change, interval = (
                        now_signature,
                        owner.clock.now(),
                        poll.initial_s,
                    )
            idle = (owner.clock.now() - last_change).total_seconds()
            if idle >= poll.stuck_after_s:
                self._give_up(signature)
            owner.sleep(owner.jittered(interval))
            interval = min(poll.max_s, interval * poll.growth)

    def _decide(self, status: str) -> TrainingJob | None:
        state = phase(status)
        if state == "succeeded":
            return self._succeeded()
        if state == "failed":
            raise TrainingError(failure_reason(self.job.id, self.job.error))
        if state == "cancelled":
            raise TrainingError(f"fine-tuning job {self.job.id} was cancelled outside tuneloop")
        if state == "unknown" and status not in self.warned:
            self.warned.add(status)  # e.g. "paused": not an end; keep polling, stuck rule holds
            log.warning("fine-tuning job %s has status %r, unknown here", self.job.id, status)
        return None

    def _give_up(self, signature: tuple[Any, ...] | None) -> None:
        status = signature[0] if signature else "unreachable"
        reason = (
            f"fine-tuning job {self.job.id} made no progress for {self.owner._stuck_text} "
            f"(status {status})"
        )
        try:
            self.owner.cancel(self.output_dir)
            reason += "; it was cancelled"
        except ExternalServiceError as exc:
            reason += f"; cancelling it failed: {exc}"
        raise TrainingError(reason)

    def _epochs(self) -> int | None:
        value = _hyper(self.job).get("n_epochs")
        return value if isinstance(value, int) else None

    def _new_events(self) -> list[Any]:
        client, job_id, seen = self.owner.client, self.job.id, self.events.seen
        page = self.owner.api.call(
            "list events", lambda: client.fine_tuning.jobs.list_events(job_id, limit=100)
        )
        batch = list(page.data)
        while page.has_more and page.data and not all(e.id in seen for e in page.data):
            after = page.data[-1].id
            page = self.owner.api.call(
                "list events",
                partial(client.fine_tuning.jobs.list_events, job_id, after=after, limit=100),
            )
            batch.extend(page.data)
        return batch

    def _checkpoints(self) -> list[dict[str, Any]]:
        client, job_id = self.owner.client, self.job.id
        found: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            extra = {"after": after} if after else {}
            page = self.owner.api.call(
                "list checkpoints",
                partial(client.fine_tuning.jobs.checkpoints.list, job_id, limit=100, **extra),
            )
            found.extend(
                {
                    "step": int(cp.step_number),
                    "model": cp.fine_tuned_model_checkpoint,
                    "metrics": numbers(cp.metrics),
                }
                for cp in page.data
            )
            if not page.has_more or not page.data:
                return sorted(found, key=lambda cp: cp["step"])
            after = page.data[-1].id

    def _succeeded(self) -> TrainingJob:
        job, owner = self.job, self.owner
        if not job.fine_tuned_model:
            raise TrainingError(f"fine-tuning job {job.id} succeeded without a fine_tuned_model")
        for progress in self.events.add(self._new_events(), n_epochs=self._epochs()):
            self.on_step(progress)
        checkpoints = self._checkpoints()
        steps = self.events.ordered()
        last = checkpoints[-1]["metrics"] if checkpoints else (steps[-1].metrics if steps else {})
        validation = last.get("full_valid_loss", last.get("valid_loss"))
        hyper = _hyper(job)
        epochs = hyper.get("n_epochs") if isinstance(hyper.get("n_epochs"), int) else None
        last_epoch = [s.loss for s in steps if epochs and s.epoch > epochs - 1]
        tokens = int(job.trained_tokens or 0)
        cost = round(tokens * owner.price / 1_000_000, 6)
        model_dir = self.output_dir / MODEL_DIR
        model_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "fine_tuned_model": job.fine_tuned_model,
            "job_id": job.id,
            "base_model": job.model,
            "trained_tokens": tokens,
            "estimated_cost_usd": cost,
            "hyperparameters": hyper,
        }
        (model_dir / MODEL_FILE).write_text(json.dumps(record, indent=2) + "\n", "utf-8")
        resolved = Hyperparameters.from_params(
            self.hp.to_params()
            | {
                k: v
                for k, v in (("epochs", epochs), ("batch_size", hyper.get("batch_size")))
                if isinstance(v, int)
            }
        )
        duration = (job.finished_at or 0) - (job.created_at or 0)
        result = TrainingJob(
            backend=owner.backend,
            status="succeeded",
            base_model=job.model,
            output_dir=self.output_dir,
            hyperparams=resolved,
            adapter_path=model_dir,
            steps=steps,
            tokens_seen=tokens,
            train_loss=sum(last_epoch) / len(last_epoch) if last_epoch else last.get("train_loss"),
            validation_loss=validation,
            external_id=job.id,
            device="hosted",
            duration_seconds=float(max(0, duration)),
            details=record | {"checkpoints": checkpoints, "api_calls": owner.api.calls},
        )
        result.save(self.output_dir / JOB)
        return result


def _hyper(job: Any) -> dict[str, Any]:
    method = getattr(job, "method", None)
    supervised = getattr(method, "supervised", None) if method is not None else None
    source = getattr(supervised, "hyperparameters", None) or getattr(job, "hyperparameters", None)
    if source is None:
        return {}
    return source if isinstance(source, dict) else source.model_dump(exclude_none=True)
