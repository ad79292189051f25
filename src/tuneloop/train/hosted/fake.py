"""A protocol-faithful fake of the OpenAI fine-tuning API, served over real HTTP.

It speaks what the official SDK sends and expects: bearer auth; ``/files`` (multipart
upload, retrieve: ``uploaded`` then ``processed``); ``/fine_tuning/jobs`` (create with
``method`` or legacy ``hyperparameters``, retrieve, list filtered by ``metadata[k]=v`` with
``after``/``limit`` cursor pagination, cancel, pause, resume); a job's ``events`` and
``checkpoints`` (newest first, cursor-paginated); and ``/chat/completions`` for the ``ft:``
models it produced. A job's life is a function of the given clock: ``validating_files``,
``queued``, then ``running`` one step per ``step_s``, then ``succeeded`` (checkpoints at the
last three epochs, like OpenAI) — so a test moves a job by moving its clock. Its reported
validation loss is its training loss plus a gap that shrinks with the number of training
examples: a job on more data reports a lower one, and an offline gate can pass.

Faults (the traps that bite real integrations): :meth:`FakeFineTuning.inject` queues
one-off faults for a route; ``fault_rate`` draws them at random (seeded). Kinds: ``429``
(with ``Retry-After``), ``500``, ``503``, ``lost`` (the request takes effect, the answer is
a 500), ``status`` (the job reports a status never sent before), ``failed`` (the job fails
with an ``error`` object, ``failed_empty``: with ``{}``), ``hang`` (the job stops moving),
``shuffle`` (events out of order).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tuneloop.config import Settings
from tuneloop.domain.clock import Clock

API_KEY = "sk-fake-fine-tuning"
RANDOM_FAULTS = ("429", "500", "503", "lost")


@dataclass
class FakeJob:
    body: dict[str, Any]
    created: float
    paused_total: float = 0.0
    paused_at: float | None = None
    ended: str | None = None  # cancelled / failed, set by a call or a fault
    error: dict[str, Any] | None = None
    odd_status: str | None = None
    hang_at: float | None = None


@dataclass
class FakeFineTuning:
    clock: Clock
    process_s: float = 5.0  # an uploaded file is processed this long after
    validate_s: float = 10.0
    queue_s: float = 20.0
    step_s: float = 10.0
    steps_per_epoch: int = 4
    fault_rate: float = 0.0
    seed: int = 0
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    log: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status
    queued_faults: dict[str, list[str]] = field(default_factory=dict)
    examples: dict[str, int] = field(default_factory=dict)  # lines per uploaded file

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._rng = random.Random(self.seed)

    def inject(self, route: str, *kinds: str) -> None:
        """Queue faults for the next requests to ``route`` (e.g. "POST /fine_tuning/jobs")."""
        self.queued_faults.setdefault(route, []).extend(kinds)

    def now(self) -> float:
        return self.clock.now().timestamp()

    def creates(self) -> int:
        return sum(1 for m, p, s in self.log if m == "POST" and p == "/fine_tuning/jobs")

    # -- job life ---------------------------------------------------------------------
    def view(self, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        body = dict(job.body)
        epochs = int(body["_epochs"])
        total = epochs * self.steps_per_epoch
        step, status = self._progress(job, total)
        body.update(status=status, error=job.error)
        if status == "succeeded":
            body["fine_tuned_model"] = (
                f"ft:{body['model']}:fake:{body.get('_suffix') or 'x'}:{job_id[-6:]}"
            )
            body["trained_tokens"] = 1000 * total
            body["finished_at"] = int(job.created + self._end_offset(total))
        return {k: v for k, v in body.items() if not k.startswith("_")} | {"_step": step}

    def _progress(self, job: FakeJob, total: int) -> tuple[int, str]:
        now = job.paused_at if job.paused_at is not None else self.now()
        if job.hang_at is not None:
            now = min(now, job.hang_at)
        elapsed = now - job.created - job.paused_total
        start = self.validate_s + self.queue_s
        step = max(0, min(total, int((elapsed - start) // self.step_s))) if elapsed > start else 0
        if job.ended:
            return step, job.ended
        if job.odd_status:
            return step, job.odd_status
        if job.paused_at is not None:
            return step, "paused"
        if elapsed < self.validate_s:
            return 0, "validating_files"
        if elapsed < start:
            return 0, "queued"
        if elapsed < self._end_offset(total):
            return step, "running"
        return total, "succeeded"

    def _end_offset(self, total: int) -> float:
        return self.validate_s + self.queue_s + (total + 1) * self.step_s

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """Oldest first: created, per-step metrics, then the end."""
        view = self.view(job_id)
        job, step = self.jobs[job_id], view["_step"]
        total = int(job.body["_epochs"]) * self.steps_per_epoch
        made = int(job.created)
        out = [_event(job_id, 0, made, "info", "Created fine-tuning job", None)]
        for s in range(1, step + 1):
            data: dict[str, Any] = {"step": s, "total_steps": total, "train_loss": _loss(s)}
            data["train_mean_token_accuracy"] = round(1 - _loss(s) / 4, 4)
            if s % self.steps_per_epoch == 0:
                data["valid_loss"] = _loss(s) + self.validation_gap(job_id) + 0.05
            out.append(_event(job_id, s, made + s, "metrics", f"Step {s}/{total}", data))
        if view["status"] in ("succeeded", "failed", "cancelled"):
            out.append(
                _event(job_id, total + 1, made + total + 1, "info", f"Job {view['status']}", None)
            )
        return out

    def validation_gap(self, job_id: str) -> float:
        """How much the held-out loss exceeds the training loss: less for a job trained on
        more examples (so a run on more data reports a lower validation loss, as it would)."""
        return round(0.4 / math.sqrt(int(self.jobs[job_id].body["_examples"])), 5)

    def checkpoints(self, job_id: str) -> list[dict[str, Any]]:
        view = self.view(job_id)
        if view["status"] != "succeeded":
            return []
        epochs = int(self.jobs[job_id].body["_epochs"])
        out = []
        for epoch in range(max(1, epochs - 2), epochs + 1):
            s = epoch * self.steps_per_epoch
            gap = self.validation_gap(job_id)
            metrics = {"step": s, "train_loss": _loss(s), "valid_loss": _loss(s) + gap + 0.05}
            if epoch == epochs:
                metrics["full_valid_loss"] = _loss(s) + gap
            out.append(
                {
                    "id": f"ftckpt-{job_id[-6:]}-{s}",
                    "object": "fine_tuning.job.checkpoint",
                    "created_at": int(self.jobs[job_id].created) + s,
                    "fine_tuning_job_id": job_id,
                    "step_number": s,
                    "metrics": metrics,
                    "fine_tuned_model_checkpoint": f"{view['fine_tuned_model']}:ckpt-step-{s}",
                }
            )
        return out

    def draw_fault(self, route: str) -> str | None:
        with self._lock:
            queued = self.queued_faults.get(route)
            if queued:
                return queued.pop(0)
            if self.fault_rate and self._rng.random() < self.fault_rate:
                return self._rng.choice(RANDOM_FAULTS)
        return None

    def app(self) -> FastAPI:
        from tuneloop.train.hosted.fake_routes import build_app

        return build_app(self)


def _loss(step: int) -> float:
    return round(2.5 * 0.9**step, 5)


def _event(job_id: str, n: int, at: int, kind: str, message: str, data: Any) -> dict[str, Any]:
    return {
        "id": f"ftevent-{job_id[-6:]}-{n:05d}",
        "object": "fine_tuning.job.event",
        "created_at": at,
        "level": "info",
        "message": message,
        "type": kind,
        "data": data,
    }


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Form fields of a multipart body: name → (filename, content)."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str):
            fields[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


def error(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


@contextmanager
def serve(fake: FakeFineTuning) -> Iterator[str]:
    """Serve the fake with uvicorn on a free loopback port; yields its ``/v1`` base URL."""
    import time

    import uvicorn

    config = uvicorn.Config(fake.app(), host="127.0.0.1", port=0, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake fine-tuning API did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(30)


def request_id(request: Request) -> str:
    return f"{request.method} {request.url.path.removeprefix('/v1')}"


@contextmanager
def fake_provider(settings: Settings) -> Iterator[Settings]:
    """``settings`` pointed at a fake served for the duration (``tuneloop demo --backend
    openai``): wall-clock time with phases of a fraction of a second, polling to match."""
    from pydantic import SecretStr

    from tuneloop.domain.clock import SystemClock

    fake = FakeFineTuning(
        SystemClock(), process_s=0.2, validate_s=0.3, queue_s=0.3, step_s=0.1, steps_per_epoch=10
    )
    with serve(fake) as base_url:
        hosted = settings.training.openai.model_copy(
            update={"poll_initial_seconds": 0.1, "poll_max_seconds": 0.5}
        )
        training = settings.training.model_copy(update={"backend": "openai", "openai": hosted})
        openai = settings.openai.model_copy(
            update={"base_url": base_url, "api_key": SecretStr(API_KEY)}
        )
        yield settings.model_copy(update={"training": training, "openai": openai})
