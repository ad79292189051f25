"""The fake fine-tuning API's HTTP routes (the state and the job timeline are in ``fake``)."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tuneloop.train.hosted.fake import API_KEY, FakeFineTuning, error, parse_multipart

Action = Callable[[], Response | dict[str, Any]]


def build_app(fake: FakeFineTuning) -> FastAPI:
    app = FastAPI()

    def respond(request: Request, route: str, action: Action) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            fake.log.append((request.method, request.url.path.removeprefix("/v1"), 401))
            return error(401, "Incorrect API key provided", "invalid_api_key")
        fault = fake.draw_fault(route)
        if fault in ("429", "500", "503"):
            response: Response = error(
                int(fault),
                "Rate limit reached" if fault == "429" else "The server had an error",
                "rate_limit_exceeded" if fault == "429" else "server_error",
                headers={"Retry-After": "2"} if fault == "429" else None,
            )
        else:
            with fake._lock:
                result = action() if fault is None or fault == "lost" else job_fault(fault)
            response = result if isinstance(result, Response) else JSONResponse(result)
            if fault == "lost":  # it happened, but the caller never hears so
                response = error(500, "The server had an error", "server_error")
        fake.log.append(
            (request.method, request.url.path.removeprefix("/v1"), response.status_code)
        )
        return response

    def job_fault(kind: str) -> Response:
        return error(500, f"fault {kind} only applies to a job route", "server_error")

    def find(job_id: str) -> Response | None:
        return None if job_id in fake.jobs else error(404, f"No such job: {job_id}")

    @app.post("/v1/files")
    async def upload(request: Request) -> Response:
        fields = parse_multipart(request.headers.get("content-type", ""), await request.body())

        def action() -> Response | dict[str, Any]:
            if (
                fields.get("purpose", (None, b""))[1].decode() != "fine-tune"
                or "file" not in fields
            ):
                return error(400, "purpose must be fine-tune and a file is required")
            name, content = fields["file"]
            bad = [n for n, line in enumerate(content.splitlines(), 1) if not _chat_line(line)]
            file_id = f"file-{uuid.uuid4().hex[:24]}"
            fake.examples[file_id] = len(content.splitlines())
            fake.files[file_id] = {
                "id": file_id,
                "object": "file",
                "bytes": len(content),
                "created_at": int(fake.now()),
                "filename": name or "upload.jsonl",
                "purpose": "fine-tune",
                "status": "uploaded",
                "status_details": f"line {bad[0]}: not a chat example" if bad else None,
            }
            return file_view(file_id)

        return respond(request, "POST /files", action)

    def file_view(file_id: str) -> dict[str, Any]:
        record = dict(fake.files[file_id])
        if fake.now() >= record["created_at"] + fake.process_s:
            record["status"] = "error" if record["status_details"] else "processed"
        return record

    @app.get("/v1/files/{file_id}")
    async def get_file(request: Request, file_id: str) -> Response:
        def action() -> Response | dict[str, Any]:
            if file_id not in fake.files:
                return error(404, f"No such File object: {file_id}")
            return file_view(file_id)

        return respond(request, "GET /files/{id}", action)

    @app.post("/v1/fine_tuning/jobs")
    async def create(request: Request) -> Response:
        body = await request.json()

        def action() -> Response | dict[str, Any]:
            training = fake.files.get(body.get("training_file", ""))
            if training is None or file_view(training["id"])["status"] != "processed":
                return error(400, "File is not ready or does not exist", param="training_file")
            method = body.get("method") or {"type": "supervised", "supervised": {}}
            asked = (
                (method.get("supervised") or {}).get("hyperparameters")
                or body.get("hyperparameters")
                or {}
            )
            hyper = {
                "n_epochs": _auto(asked.get("n_epochs"), 3),
                "batch_size": _auto(asked.get("batch_size"), 1),
                "learning_rate_multiplier": _auto(asked.get("learning_rate_multiplier"), 1.8),
            }
            job_id = f"ftjob-{uuid.uuid4().hex[:24]}"
            fake.jobs[job_id] = _new_job(fake, job_id, body, hyper)
            return view(job_id)

        return respond(request, "POST /fine_tuning/jobs", action)

    def view(job_id: str) -> dict[str, Any]:
        return {k: v for k, v in fake.view(job_id).items() if k != "_step"}

    @app.get("/v1/fine_tuning/jobs")
    async def list_jobs(request: Request) -> Response:
        query = request.query_params

        def action() -> Response | dict[str, Any]:
            wanted = {k[9:-1]: v for k, v in query.items() if k.startswith("metadata[")}
            ids = sorted(fake.jobs, key=lambda j: fake.jobs[j].created, reverse=True)
            chosen = [
                j
                for j in ids
                if all(
                    (fake.jobs[j].body.get("metadata") or {}).get(k) == v for k, v in wanted.items()
                )
            ]
            return page([view(j) for j in chosen], query)

        return respond(request, "GET /fine_tuning/jobs", action)

    @app.get("/v1/fine_tuning/jobs/{job_id}")
    async def retrieve(request: Request, job_id: str) -> Response:
        def action() -> Response | dict[str, Any]:
            return find(job_id) or view(job_id)

        route = "GET /fine_tuning/jobs/{id}"
        queued = fake.queued_faults.get(route)
        fault = queued[0] if queued else None
        if fault in ("status", "failed", "failed_empty", "hang") and job_id in fake.jobs:
            fake.queued_faults[route].pop(0)
            return job_level(request, job_id, str(fault))
        return respond(request, route, action)

    def job_level(request: Request, job_id: str, kind: str) -> Response:
        job = fake.jobs[job_id]
        result = view(job_id)
        if kind == "status":
            result["status"] = "paused"  # once: a status this client never saw before
        elif kind in ("failed", "failed_empty"):
            job.ended = "failed"
            job.error = (
                {}
                if kind == "failed_empty"
                else {
                    "code": "invalid_training_file",
                    "param": "training_file",
                    "message": "The job failed due to an invalid training file.",
                }
            )
            result = view(job_id)
        else:
            job.hang_at = fake.now()
        fake.log.append((request.method, request.url.path.removeprefix("/v1"), 200))
        return JSONResponse(result)

    for verb in ("cancel", "pause", "resume"):
        app.add_api_route(
            f"/v1/fine_tuning/jobs/{{job_id}}/{verb}",
            _control(fake, respond, find, view, verb),
            methods=["POST"],
        )

    @app.get("/v1/fine_tuning/jobs/{job_id}/events")
    async def events(request: Request, job_id: str) -> Response:
        def action() -> Response | dict[str, Any]:
            return find(job_id) or page(list(reversed(fake.events(job_id))), request.query_params)

        response = respond(request, "GET /fine_tuning/jobs/{id}/events", action)
        if fake.queued_faults.get("shuffle events") and response.status_code == 200:
            fake.queued_faults["shuffle events"].pop(0)
            body = json.loads(bytes(response.body))
            random.Random(0).shuffle(body["data"])
            return JSONResponse(body)
        return response

    @app.get("/v1/fine_tuning/jobs/{job_id}/checkpoints")
    async def checkpoints(request: Request, job_id: str) -> Response:
        def action() -> Response | dict[str, Any]:
            found = list(reversed(fake.checkpoints(job_id))) if job_id in fake.jobs else None
            return find(job_id) or page(found or [], request.query_params)

        return respond(request, "GET /fine_tuning/jobs/{id}/checkpoints", action)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()

        def action() -> Response | dict[str, Any]:
            produced = {fake.view(j).get("fine_tuned_model") for j in fake.jobs}
            if body.get("model") not in produced:
                return error(
                    404, f"The model {body.get('model')} does not exist", code="model_not_found"
                )
            question = str(body["messages"][-1]["content"])
            text = f"{body['model']} says: {question}"
            usage = {"prompt_tokens": len(question.split()), "completion_tokens": len(text.split())}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(fake.now()),
                "model": body["model"],
                "choices": [choice],
                "usage": usage,
            }

        return respond(request, "POST /chat/completions", action)

    return app


def _control(fake: FakeFineTuning, respond: Any, find: Any, view: Any, verb: str) -> Any:
    async def control(request: Request, job_id: str) -> Response:
        def action() -> Response | dict[str, Any]:
            missing = find(job_id)
            if missing is not None:
                return missing
            job, status = fake.jobs[job_id], view(job_id)["status"]
            if verb == "cancel":
                if status in ("succeeded", "failed", "cancelled"):
                    return error(400, f"Job is already {status}")
                job.ended = "cancelled"
            elif verb == "pause" and status == "running":
                job.paused_at = fake.now()
            elif verb == "resume" and job.paused_at is not None:
                job.paused_total += fake.now() - job.paused_at
                job.paused_at = None
            return view(job_id)

        return respond(request, f"POST /fine_tuning/jobs/{{id}}/{verb}", action)

    return control


def page(items: list[dict[str, Any]], query: Any) -> dict[str, Any]:
    """OpenAI's cursor page: items after the ``after`` id, ``limit`` of them, ``has_more``."""
    after, limit = query.get("after"), int(query.get("limit") or 20)
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit}


def _auto(value: Any, default: Any) -> Any:
    return default if value in (None, "auto") else value


def _chat_line(line: bytes) -> bool:
    try:
        data = json.loads(line)
    except ValueError:
        return False
    return isinstance(data, dict) and isinstance(data.get("messages"), list)


def _new_job(fake: FakeFineTuning, job_id: str, body: dict[str, Any], hyper: dict[str, Any]) -> Any:
    from tuneloop.train.hosted.fake import FakeJob

    record = {
        "id": job_id,
        "object": "fine_tuning.job",
        "created_at": int(fake.now()),
        "model": body["model"],
        "organization_id": "org-fake",
        "result_files": [],
        "seed": body.get("seed", 0),
        "status": "validating_files",
        "trained_tokens": None,
        "training_file": body["training_file"],
        "validation_file": body.get("validation_file"),
        "hyperparameters": hyper,
        "fine_tuned_model": None,
        "finished_at": None,
        "estimated_finish": None,
        "integrations": None,
        "error": None,
        "metadata": body.get("metadata"),
        "_suffix": body.get("suffix"),
        "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
        "_epochs": hyper["n_epochs"],
        "_examples": fake.examples.get(body["training_file"], 1),
    }
    return FakeJob(body=record, created=fake.now())
