"""HTTP service under load: /v1/events, /fine-tuning/status and the lists vs bare FastAPI.

``POST /v1/events``, ``GET /fine-tuning/status/{id}`` and (``--endpoints``) the list reads
``/datasets``, ``/deployments`` and ``/evaluation/ab-tests`` against a bare FastAPI app
answering the same JSON, measured in the same run by the same load generator.

``tuneloop serve`` runs as deployed (uvicorn, 1 and 2 workers, a real SQLite workspace or,
with --database-url, a private PostgreSQL schema), authenticated with an operator API key,
rate limit off. The reference is FastAPI under the same uvicorn settings with no middleware,
auth or database: it parses the same body and returns our endpoint's own answer (same JSON).

  * ``POST /v1/events``: batches of --batch events (exposures, generations and outcomes of a
    running experiment); every request carries fresh idempotency keys, so each is accepted
    into the event stream (202) and written by the in-process consumers; after the load the
    benchmark prints how long the consumers took to catch up;
  * ``GET /fine-tuning/status/{id}``: a finished run with its steps, outputs and model;
  * ``GET /datasets``, ``/deployments``, ``/evaluation/ab-tests``: a page of LISTED items
    each (the default page size holds them all) and its total.

Each server gets --connections keep-alive connections (bench/http_load.py), --warmup seconds
unrecorded, then --seconds timed; rounds alternate ours and bare, best of each. Prints req/s,
events/s, p50/p99 latency, errors, the generator's CPU, and ratio = ours / bare (req/s).

    python bench/api.py                                     # SQLite, 1 and 2 workers
    python bench/api.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/api.py --database-url postgresql://postgres@127.0.0.1:5432/test \
        --redis-url redis://127.0.0.1:6379/0                # the stream on Redis Streams
    python bench/api.py --smoke                             # half-second windows, 1 worker
    python bench/api.py --endpoints status datasets deployments ab-tests

With --database-url, ``POST /v1/events`` is also compared with the limit the issue sets
for it: binary ``COPY FROM`` of the same events into the keyed, indexed events table
(``bench/consume.py``'s reference), measured in the same run; the goal is accepted
events/s >= 0.5x of it, with p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from http_load import (
    RequestSource,
    Result,
    Row,
    add_load_options,
    best_of,
    cycle,
    print_table,
    probe,
    request_bytes,
    request_head,
)
from http_servers import (
    BareRoute,
    Workspace,
    bare_server,
    tuneloop_server,
    workspace,
    write_bare_spec,
)
from tuneloop.config import Settings
from tuneloop.domain.experiments import ArmSpec
from tuneloop.domain.runs import RunStatus, StepStatus
from tuneloop.experiments.service import create_experiment
from tuneloop.pipeline.service import start_run
from tuneloop.rollout.policy import Guardrails, RolloutConfig
from tuneloop.store import runs as repo
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.store.deployment_models import Deployment, DeploymentEvent
from tuneloop.store.deployments import add_deployment
from tuneloop.store.models import DatasetVersion
from tuneloop.store.models_registry import record_model_version
from tuneloop.store.types import utcnow
from tuneloop.synthetic.traffic import TrafficSpec, generate_traffic

TENANT = "bench"
KEY = "ab-test-bench-001"
MODEL = "tuneloop-bench"
ARMS = [ArmSpec("baseline", MODEL, "1", 0.5), ArmSpec("candidate", MODEL, "2", 0.5)]
EVENTS = "POST /v1/events"
STATUS = "GET /fine-tuning/status/{id}"
LISTS = {"datasets": "/datasets", "deployments": "/deployments", "ab-tests": "/evaluation/ab-tests"}
LISTED = 10  # items of each list
PLACEHOLDER = "@@idempotency-key@@"


class EventBatches:
    """The same ``size`` events in every request, each request with fresh idempotency keys.

    The events are JSON-encoded once around a placeholder key; per request only the keys
    are put in, at a fixed width (so the head and its Content-Length are built once): cheap
    for the generator, which shares the cores with the server.
    """

    def __init__(self, size: int, api_key: str) -> None:
        spec = TrafficSpec(KEY, [(a.name, a.weight) for a in ARMS], units=size, seed=1)
        events = next(generate_traffic(spec))[:size]
        self._pieces: list[tuple[bytes, bytes]] = []
        for event in events:
            shown = {**event, "ts": event["ts"].isoformat(), "idempotency_key": PLACEHOLDER}
            before, after = json.dumps(shown).split(PLACEHOLDER)
            self._pieces.append((before.encode(), after.encode()))
        self.size = len(self._pieces)
        self._tag = uuid.uuid4().hex[:8].encode()  # keys unique across instances too
        self._sent = 0
        self._head = request_head(
            "POST",
            "/v1/events",
            headers={"Authorization": f"Bearer {api_key}"},
            length=len(self.body()),
        )

    def body(self) -> bytes:
        self._sent += 1
        request = b"%s-%010d-" % (self._tag, self._sent)
        events = b",".join(
            before + request + b"%03d" % index + after
            for index, (before, after) in enumerate(self._pieces)
        )
        return b'{"events":[' + events + b"]}"

    def __call__(self) -> bytes:
        return self._head + self.body()


def finished_run(ws: Workspace) -> str:
    """A succeeded run with the outputs a real one stores, made directly in the store (the
    status endpoint only reads them); returns its id."""
    settings = Settings(workspace=ws.folder, database={"url": ws.url})
    run = start_run(ws.engine, settings, TENANT)
    started = utcnow() - timedelta(minutes=30)
    repo.move_run(ws.engine, TENANT, run.id, RunStatus.RUNNING, started_at=started)
    record_model_version(
        ws.engine,
        TENANT,
        model_id=MODEL,
        version="3",
        run_id=run.id,
        base_model="tiny",
        status="challenger",
    )
    for offset, (name, output) in enumerate(step_outputs(run.id).items()):
        repo.update_step(
            ws.engine,
            TENANT,
            run.id,
            name,
            status=StepStatus.SUCCEEDED,
            attempts=1,
            output=output,
            started_at=started + timedelta(minutes=5 * offset),
            finished_at=started + timedelta(minutes=5 * offset + 4),
        )
    repo.move_run(ws.engine, TENANT, run.id, RunStatus.SUCCEEDED, finished_at=utcnow())
    return run.id


def step_outputs(run_id: str) -> dict[str, dict[str, Any]]:
    """What the pipeline's steps store (``pipeline.steps``), with plausible values."""
    return {
        "collect": {
            "status": "ok",
            "message": "",
            "counts": {"hook": 812, "body": 804, "train": 1452, "validation": 164},
            "source_records": 1616,
            "qualifying": 1616,
            "tokens_total": 412_337,
            "estimated_cost_usd": 1.24,
            "dataset_id": "sha256-" + "0" * 57,
        },
        "train": {
            "seconds": 1260.5,
            "job_id": f"{run_id}-train",
            "backend": "local",
            "base_model": "tiny",
            "adapter_path": f"runs/{TENANT}/{run_id}/train/adapter",
            "losses": [round(2.5 - i * 0.01, 4) for i in range(200)],
            "train_loss": 0.52,
            "validation_loss": 0.61,
        },
        "register": {"model_id": MODEL, "version": 3, "source": "runs:/x/adapter"},
        "evaluate": {"passed": True, "metrics": {"offline_validation_loss": 0.61}},
    }


def listed(ws: Workspace) -> None:
    """LISTED dataset versions, deployments (finished ones: a tenant has one active at most)
    and A/B tests (drafts, next to the running one) for the list endpoints."""
    now = utcnow()
    with Session(ws.engine) as session, session.begin():
        for i in range(LISTED):
            version = f"{i:02d}" + "ab" * 31
            session.add(
                DatasetVersion(
                    tenant_id=TENANT,
                    id=version,
                    persona_id=None,
                    path=f"datasets/{version}",
                    source_records=1616,
                    hook_examples=812,
                    body_examples=804,
                    train_examples=1452,
                    validation_examples=164,
                    total_tokens=412_337,
                    manifest={"sources": {"counts": {f"{MODEL}@2": 900, "unknown": 716}}},
                    created_at=now - timedelta(days=i),
                )
            )
    plan = {
        "previous_model": {"model_id": MODEL, "version": "1"},
        "rollback_time_seconds": 30,
        "health_check_endpoints": ["/health"],
        "triggers": Guardrails().trigger_names(),
    }
    for i in range(LISTED):
        at = now - timedelta(days=i)
        deployment = Deployment(
            tenant_id=TENANT, id=f"deploy-bench-{i:03d}", model_id=MODEL, version="2",
            previous_model_id=MODEL, previous_version="1", ab_test_id=KEY,
            strategy="gradual_rollout", status="completed", traffic=1.0, step=4,
            rollout_config=RolloutConfig().to_json(), guardrails=Guardrails().to_json(),
            rollback_plan=plan, safety_checks=[], created_at=at, step_started_at=at,
            finished_at=at,
        )  # fmt: skip
        deployed = DeploymentEvent(
            tenant_id=TENANT, deployment_id=deployment.id, seq=1, kind="deployed",
            from_traffic=0.0, to_traffic=0.1, reasons=[], details=None, actor="bench", at=at,
        )  # fmt: skip
        add_deployment(ws.engine, deployment, deployed)
    for i in range(1, LISTED):  # and the running one; a draft each of a later candidate
        arms = [ARMS[0], ArmSpec("candidate", MODEL, str(3 + i), 0.5)]
        create_experiment(ws.engine, TENANT, arms=arms, key=f"{KEY}-{i:03d}", start=False)


def answer(port: int, method: str, path: str, *, body: bytes = b"", key: str) -> Any:
    """Our endpoint's answer (a 200, or the 202 of /v1/events): the reference returns the
    same JSON."""
    status, found = probe(port, method, path, body=body, headers={"Authorization": f"Bearer {key}"})
    if status not in (200, 202):
        raise SystemExit(f"{method} {path} answered {status}: {found}")
    return found


def measure(args: argparse.Namespace, ws: Workspace, run_id: str, workers: int) -> list[Row]:
    key = create_api_key(ws.engine, TENANT, role=Role.OPERATOR, name=f"bench-{workers}").plaintext
    batches = EventBatches(args.batch, key)
    status_path = f"/fine-tuning/status/{run_id}"
    status_request = request_bytes("GET", status_path, headers={"Authorization": f"Bearer {key}"})
    lists = [path for name, path in LISTS.items() if name in args.endpoints]
    env = ws.server_env()
    if args.consumer == "after":  # the edge alone; the stream is drained after the load
        env["TUNELOOP_EVENTS__CONSUME_IN_SERVE"] = "false"
    if args.redis_url:  # a stream of this run's own: nothing left from an earlier one
        env |= {
            "TUNELOOP_REDIS__URL": args.redis_url,
            "TUNELOOP_EVENTS__STREAM_KEY": f"tuneloop:bench:{uuid.uuid4().hex[:8]}",
        }
    rows: list[Row] = []
    with tuneloop_server(workers, env=env, log=ws.folder / f"tuneloop-{workers}.log") as ours:
        stored = answer(ours, "POST", "/v1/events", body=batches.body(), key=key)
        if stored.get("accepted") != batches.size:  # else we would time refusals
            raise SystemExit(f"POST /v1/events did not store the whole batch: {stored}")
        routes = [
            BareRoute("POST", "/v1/events", stored),
            BareRoute(
                "GET", "/fine-tuning/status/{item}", answer(ours, "GET", status_path, key=key)
            ),
        ]
        routes += [BareRoute("GET", path, answer(ours, "GET", path, key=key)) for path in lists]
        sizes = [len(json.dumps(route.answer, separators=(",", ":"))) for route in routes]
        print(
            f"  {workers} worker(s): events request body {len(batches.body()):,} B, answer "
            f"{sizes[0]:,} B; status answer {sizes[1]:,} B"
            + "".join(
                f"; {r.path} ({LISTED} items) {size:,} B"
                for r, size in zip(routes[2:], sizes[2:], strict=True)
            )
        )
        bare_env = env | write_bare_spec(ws.folder / "bare.json", routes)
        with bare_server(workers, env=bare_env, log=ws.folder / f"bare-{workers}.log") as bare:
            ports = {"tuneloop": ours, "bare FastAPI": bare}
            sources: list[tuple[str, RequestSource, int]] = []
            if "events" in args.endpoints:
                sources.append((f"{EVENTS} ({batches.size}/request)", batches, batches.size))
            if "status" in args.endpoints:
                sources.append((STATUS, cycle([status_request]), 0))
            for path in lists:
                listing = request_bytes("GET", path, headers={"Authorization": f"Bearer {key}"})
                sources.append((f"GET {path}", cycle([listing]), 0))
            for endpoint, source, items in sources:
                best = best_of(
                    ports,
                    source,
                    rounds=args.rounds,
                    connections=args.connections,
                    warmup=args.warmup,
                    seconds=args.seconds,
                )
                rows += [
                    Row(endpoint, workers, name, result, items) for name, result in best.items()
                ]
                if source is batches and args.consumer == "after":
                    drain(env, ws)
                elif source is batches:
                    catch_up(ours)
    return rows


def catch_up(port: int, timeout: float = 600.0) -> None:
    """After the load: events still waiting in the stream, and how long the in-process
    consumers take to write them (``/health``'s ``event_stream``)."""
    start = time.perf_counter()
    _, health = probe(port, "GET", "/health", headers={})
    waiting = (health.get("event_stream") or {}).get("pending")
    while waiting:
        if time.perf_counter() - start > timeout:
            break
        time.sleep(0.2)
        _, health = probe(port, "GET", "/health", headers={})
        waiting = (health.get("event_stream") or {}).get("pending")
    first = (health.get("event_stream") or {}).get("backend")
    print(
        f"  consumer caught up in {time.perf_counter() - start:.1f} s after the load "
        f"({first}); still waiting: {waiting}"
    )


def drain(env: dict[str, str], ws: Workspace) -> None:
    """``tuneloop consume events --drain`` (its own process, after the load): how fast it
    writes what the edge accepted while no consumer ran."""
    import subprocess
    import sys

    from tuneloop.store.events import count_events

    before = count_events(ws.engine, TENANT)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tuneloop.cli.main", "consume", "events", "--drain"],
        env=env,
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - start
    written = count_events(ws.engine, TENANT) - before
    print(
        f"  tuneloop consume events --drain: {written:,} events in {seconds:.1f} s "
        f"({written / seconds:,.0f} events/s, its start-up included)"
    )


def ratio_line(ours: Row, bare: Row) -> str:
    return (
        f"ratio ours / bare  {ours.endpoint:34s} {ours.workers} worker(s): "
        f"{ratio(ours.result, bare.result):.2f}x req/s; p99 {ours.result.percentile_ms(0.99):.1f} "
        f"vs {bare.result.percentile_ms(0.99):.1f} ms"
    )


def ratio(ours: Result, bare: Result) -> float:
    return ours.rate / bare.rate if bare.rate else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_options(parser, rounds=2, rounds_help="Alternating rounds; best of each.")
    parser.add_argument("--batch", type=int, default=100, help="Events per request.")
    parser.add_argument(
        "--endpoints",
        nargs="+",
        choices=["events", "status", *LISTS],
        default=["events", "status"],
        help="Which endpoints to load (default: events and status).",
    )
    parser.add_argument(
        "--redis-url", help="Redis for the event stream (default: the app database's stream)."
    )
    parser.add_argument(
        "--consumer",
        choices=["in-serve", "after"],
        default="in-serve",
        help="in-serve: each worker's consumer writes during the load (the default "
        "deployment); after: none runs during the load (the edge alone, a burst), then "
        "`tuneloop consume events --drain` writes what was accepted.",
    )
    parser.add_argument(
        "--copy-events",
        type=int,
        default=100_000,
        help="Events for the COPY FROM reference (with --database-url).",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="1 worker, 4 connections, 0.5 s windows, 1 round."
    )
    args = parser.parse_args()
    if args.smoke:
        args.workers, args.connections, args.warmup, args.seconds, args.rounds = [1], 4, 0.3, 0.5, 1
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"tuneloop serve vs bare FastAPI on {database}: {args.connections} connections, "
        f"{args.warmup:g} s warm-up, {args.seconds:g} s windows, best of {args.rounds} rounds"
    )
    rows: list[Row] = []
    with workspace(args.database_url, "api") as ws:
        create_experiment(ws.engine, TENANT, arms=ARMS, key=KEY)
        run_id = finished_run(ws)
        if any(name in args.endpoints for name in LISTS):
            listed(ws)
        for workers in args.workers:
            rows += measure(args, ws, run_id, workers)
    print_table(rows)
    for ours, bare in zip(rows[::2], rows[1::2], strict=True):
        print(ratio_line(ours, bare))
    if args.database_url and "events" in args.endpoints:
        copy_rate = copy_reference(args.database_url, args.copy_events)
        print(
            f"binary COPY FROM into outcome_events (key + index), {args.copy_events:,} events: "
            f"{copy_rate:,.0f} events/s"
        )
        for row in rows[::2]:
            if row.endpoint.startswith(EVENTS):
                accepted = row.result.rate * row.items_per_request
                p99 = row.result.percentile_ms(0.99)
                met = accepted >= 0.5 * copy_rate and p99 < 50
                print(
                    f"ratio accepted events/s / COPY FROM, {row.workers} worker(s): "
                    f"{accepted / copy_rate:.2f}x, p99 {p99:.1f} ms "
                    f"(goal >= 0.5x and p99 < 50 ms: {'met' if met else 'not met'})"
                )


def copy_reference(database_url: str, count: int) -> float:
    """Events/s of binary COPY FROM into a fresh schema's outcome_events, best of 2."""
    from consume import copy_indexed
    from ingest import drop, fresh, make_events, reference_rows

    engine, schema = fresh(database_url)
    try:
        rows = reference_rows(make_events(count), typed=True)
        return count / min(copy_indexed(engine, rows, 5000) for _ in range(2))
    finally:
        drop(database_url, engine, schema)


if __name__ == "__main__":
    main()
