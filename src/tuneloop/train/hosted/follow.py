"""Following one hosted job to its end: polls, steps reported, the outcome as a TrainingJob.

Polling backs off while nothing changes (with jitter) and starts over fast when something
does; an open breaker or an outage is waited out; a status it does not know is logged once
and never taken for an end; no progress for ``stuck_after_s`` cancels the job and fails.
On success the job's checkpoints and the provider's model name are recorded in
``output_dir/hosted-model/hosted_model.json`` (what the registry logs as the "adapter").
"""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneloop.errors import ExternalServiceError, TrainingError
from tuneloop.resilience.breaker import CircuitOpenError
from tuneloop.train.hosted.api import HostedAPIError
from tuneloop.train.hosted.progress import EventLog, failure_reason, numbers, phase
from tuneloop.train.hyperparams import Hyperparameters
from tuneloop.train.port import OnStep, ShouldStop, TrainingJob
from tuneloop.train.workdir import JOB

if TYPE_CHECKING:
    from tuneloop.train.hosted.trainer import HostedTrainer

log = logging.getLogger(__name__)
MODEL_DIR = "hosted-model"
MODEL_FILE = "hosted_model.json"


class Follower:
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
