"""Routing: decisions/s in-process, and POST /v1/route over HTTP vs bare FastAPI, same run.

``POST /v1/route`` is measured against a bare FastAPI endpoint answering the same JSON, in
the same run, by the same load generator.

The store holds, per tenant (SQLite by default, --database-url for a private PostgreSQL
schema): versions 1-3 of a model, version 1 champion, and one owner of the traffic per
tenant: a running experiment (2 vs 3, 50/50) for the main tenant, an active rollout of
version 2 at 30 % for another, the champion alone for the third.

  (a) in-process: ``routing_table(engine, tenant).route(unit_id)`` over --units unit ids for
      each source (experiment, deployment, champion), next to ``Assigner.assign`` (the
      experiment's hash alone), and how many times per second ``routing_table`` reads the
      state (its three queries);
  (b) HTTP: ``tuneloop serve`` (1 and 2 workers) answering ``POST /v1/route``
      ``{"unit_id": ...}`` with an API key, vs FastAPI under the same uvicorn settings with
      no auth and no middleware, parsing the same body and returning our answer's JSON.
      --connections keep-alive connections (bench/http_load.py), --warmup seconds
      unrecorded, then --seconds timed; rounds alternate ours and bare, best of each.

Prints decisions/s, then req/s, p50/p99, errors, the generator's CPU and ratio = ours / bare
(goal: >= 0.8x the bare endpoint and p99 < 25 ms on 2 cores).

    python bench/route.py
    python bench/route.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/route.py --smoke            # 20,000 ids, half-second windows, 1 worker
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from http_load import (
    Result,
    Row,
    add_load_options,
    best_of,
    cycle,
    print_table,
    probe,
    request_bytes,
)
from http_servers import (
    BareRoute,
    Workspace,
    bare_server,
    tuneloop_server,
    workspace,
    write_bare_spec,
)
from tuneloop.experiments.assignment import Assigner
from tuneloop.experiments.service import ModelRef, arm_specs, create_experiment, two_arms
from tuneloop.rollout.policy import Guardrails, RolloutConfig
from tuneloop.rollout.routing import RoutingTable, routing_table
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.store.deployment_models import Deployment, DeploymentEvent
from tuneloop.store.deployments import add_deployment, next_deployment_id
from tuneloop.store.experiments import list_experiments
from tuneloop.store.models_registry import record_model_version, set_champion
from tuneloop.store.types import utcnow

MODEL = "tuneloop-bench"
TRAFFIC = 0.3  # the rollout's share of traffic for version 2
# Tenant -> what routes its units (the main tenant is also the one measured over HTTP).
TENANTS = {"bench": "experiment", "bench-rollout": "deployment", "bench-champion": "champion"}
MAIN = "bench"
ROUTE = "/v1/route"
GOAL_RATIO, GOAL_P99_MS = 0.8, 25.0


def build_state(engine: Engine) -> None:
    """Each tenant's versions, champion, rollout and experiment, written through the store.

    The rollout row is written directly (``add_deployment``) rather than through
    ``DeploymentManager.deploy``, whose safety checks need MLflow and an A/B test result:
    routing reads only these tables, and the bench then runs without the train extra.
    """
    now = utcnow()
    for tenant, source in TENANTS.items():
        for version in ("1", "2", "3"):
            record_model_version(
                engine,
                tenant,
                model_id=MODEL,
                version=version,
                base_model="tiny",
                status="challenger",
            )
        set_champion(engine, tenant, MODEL, "1")
        # One owner of a tenant's traffic (docs/decisions): a rollout, or an A/B test.
        if source == "deployment":
            add_rollout(engine, tenant, now=now)
        if source == "experiment":
            arms = two_arms(ModelRef(MODEL, "2"), ModelRef(MODEL, "3"), 0.5)
            create_experiment(engine, tenant, arms=arms, now=now + timedelta(seconds=1))


def add_rollout(engine: Engine, tenant: str, *, now: datetime) -> None:
    deployment_id = next_deployment_id(engine, tenant, now.date())
    row = Deployment(
        tenant_id=tenant,
        id=deployment_id,
        model_id=MODEL,
        version="2",
        previous_model_id=MODEL,
        previous_version="1",
        ab_test_id=None,
        strategy="gradual_rollout",
        status="rolling_out",
        traffic=TRAFFIC,
        step=3,
        rollout_config=RolloutConfig().to_json(),
        guardrails=Guardrails().to_json(),
        rollback_plan={"previous_model": {"model_id": MODEL, "version": "1"}},
        safety_checks=[],
        row_version=1,
        created_at=now,
        step_started_at=now,
    )
    event = DeploymentEvent(
        tenant_id=tenant,
        deployment_id=deployment_id,
        seq=1,
        kind="deployed",
        from_traffic=0.0,
        to_traffic=TRAFFIC,
        reasons=["bench"],
        details=None,
        actor="bench",
        at=now,
    )
    add_deployment(engine, row, event)


# --- (a) in-process ------------------------------------------------------------------------


def fastest(run: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    """(best seconds, the last run's result)."""
    best, result = float("inf"), None
    for _ in range(rounds):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def in_process(engine: Engine, units: int, rounds: int) -> RoutingTable:
    """Print decisions/s per source and tables read/s; returns the main tenant's table."""
    ids = [f"u-{index}" for index in range(units)]
    print(f"(a) in-process, {units:,} unit ids, best of {rounds} rounds")
    for tenant, source in TENANTS.items():
        table = routing_table(engine, tenant)
        seconds, routes = fastest(lambda table=table: [table.route(u) for u in ids], rounds)
        sources = Counter(route.source for route in routes)
        assert set(sources) == {source}, sources
        arms = Counter(route.arm for route in routes)
        split = ", ".join(f"{arm or 'all'} {n / units:.2f}" for arm, n in sorted(arms.items()))
        label = f"RoutingTable.route, {source}"
        print(f"  {label:40s} {units / seconds:>12,.0f} decisions/s   ({split})")
    (experiment,) = list_experiments(engine, MAIN, status="running")
    assigner = Assigner(experiment.key, [(a.name, a.weight) for a in arm_specs(experiment)])
    seconds, _ = fastest(lambda: [assigner.assign(u) for u in ids], rounds)
    print(f"  {'Assigner.assign (the hash alone)':40s} {units / seconds:>12,.0f} decisions/s")
    reads = max(units // 1000, 20)
    seconds, _ = fastest(lambda: [routing_table(engine, MAIN) for _ in range(reads)], rounds)
    print(f"  {'routing_table() (3 queries)':40s} {reads / seconds:>12,.0f} tables/s")
    return routing_table(engine, MAIN)


# --- (b) HTTP ------------------------------------------------------------------------------


def served(port: int) -> bool:
    """Whether this build has ``POST /v1/route`` at all (else a 404 says nothing)."""
    status, schema = probe(port, "GET", "/openapi.json", headers={})
    return status == 200 and ROUTE in schema.get("paths", {})


def our_answer(port: int, key: str, expected: str) -> Any:
    body = json.dumps({"unit_id": "u-123"}).encode()
    auth = {"Authorization": f"Bearer {key}"}
    status, found = probe(port, "POST", ROUTE, body=body, headers=auth)
    if status != 200:
        raise SystemExit(f"POST {ROUTE} answered {status}: {found}")
    if found.get("model") != expected:
        raise SystemExit(f"POST {ROUTE} routed u-123 to {found.get('model')}, not {expected}")
    return found


def over_http(args: argparse.Namespace, ws: Workspace, table: RoutingTable) -> list[Row]:
    key = create_api_key(ws.engine, MAIN, role=Role.OPERATOR, name="bench").plaintext
    auth = {"Authorization": f"Bearer {key}"}
    requests = [
        request_bytes("POST", ROUTE, body=b'{"unit_id": "u-%d"}' % index, headers=auth)
        for index in range(10_000)
    ]
    documented = dataclasses.asdict(table.route("u-123"))
    env = ws.server_env()
    rows: list[Row] = []
    for workers in args.workers:
        with tuneloop_server(workers, env=env, log=ws.folder / f"tuneloop-{workers}.log") as ours:
            live = served(ours)
            if not live:
                print(
                    f"  POST {ROUTE} is not served by this build (not in /openapi.json): "
                    f"measuring the bare endpoint only, with the documented answer"
                )
            answer = our_answer(ours, key, documented["model"]) if live else documented
            spec = write_bare_spec(ws.folder / "bare.json", [BareRoute("POST", ROUTE, answer)])
            with bare_server(
                workers, env=env | spec, log=ws.folder / f"bare-{workers}.log"
            ) as bare:
                ports = {"tuneloop": ours, "bare FastAPI": bare} if live else {"bare FastAPI": bare}
                best = best_of(
                    ports,
                    cycle(requests),
                    rounds=args.rounds,
                    connections=args.connections,
                    warmup=args.warmup,
                    seconds=args.seconds,
                )
        rows += [Row(f"POST {ROUTE}", workers, name, result) for name, result in best.items()]
    return rows


def verdict(ours: Result, bare: Result, workers: int) -> str:
    ratio = ours.rate / bare.rate if bare.rate else float("nan")
    p99 = ours.percentile_ms(0.99)
    met = ratio >= GOAL_RATIO and p99 < GOAL_P99_MS
    return (
        f"ratio ours / bare  POST {ROUTE} {workers} worker(s): {ratio:.2f}x req/s, "
        f"p99 {p99:.1f} vs {bare.percentile_ms(0.99):.1f} ms "
        f"(goal >= {GOAL_RATIO}x and p99 < {GOAL_P99_MS:g} ms: {'met' if met else 'not met'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_options(parser, rounds=3, rounds_help="Rounds; best of each.")
    parser.add_argument("--units", type=int, default=200_000, help="Unit ids routed in-process.")
    parser.add_argument(
        "--smoke", action="store_true", help="20,000 ids, 1 worker, 4 connections, 0.5 s, 1 round."
    )
    args = parser.parse_args()
    if args.smoke:
        args.units, args.workers, args.connections = 20_000, [1], 4
        args.warmup, args.seconds, args.rounds = 0.3, 0.5, 1
    database = "PostgreSQL" if args.database_url else "SQLite"
    with workspace(args.database_url, "route") as ws:
        build_state(ws.engine)
        print(f"routing on {database}")
        table = in_process(ws.engine, args.units, args.rounds)
        print(
            f"(b) POST {ROUTE}: tuneloop serve vs bare FastAPI, {args.connections} connections, "
            f"{args.warmup:g} s warm-up, {args.seconds:g} s windows, best of {args.rounds} rounds"
        )
        rows = over_http(args, ws, table)
    print_table(rows)
    bare = {row.workers: row.result for row in rows if row.server == "bare FastAPI"}
    for row in rows:
        if row.server == "tuneloop":
            print(verdict(row.result, bare[row.workers], row.workers))
    if not any(row.server == "tuneloop" for row in rows):
        print(f"ratio ours / bare: not measured (POST {ROUTE} not served yet)")


if __name__ == "__main__":
    main()
