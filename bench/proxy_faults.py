"""The proxy in front of an upstream failing a share of its calls at random: do clients see
about the upstream's own error rate, and how fast does service come back after an outage?

Reference, measured in the same run: the upstream's fault rate (429, 500, 503, hangs past
the proxy's timeout, 200s that are not completions, in equal parts). Printed: the client
error rate, its ratio to the upstream's (1.0: the proxy adds no errors; the old
consecutive-failure breaker gave ~2.7), and the seconds from the end of a full outage to the
first fully served batch. Both servers run under uvicorn on loopback (the stand-in upstream
is the tests' ``faulty_upstream``)::

    python bench/proxy_faults.py --calls 3000 --fault-rate 0.3
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration" / "api"))

from fake_openai import serve_in_thread
from faulty_upstream import Faults, faulty_upstream

from tuneloop.api.app import create_app
from tuneloop.config import Settings
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.store.models_registry import record_model_version, set_champion

MODEL, TENANT = "bench-model", "bench"
BODY = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


async def calls(url: str, key: str, count: int, concurrency: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as http:

        async def one(n: int) -> None:
            async with gate:
                try:
                    answer = await http.post(
                        "/v1/chat/completions",
                        json=BODY | {"user": f"u-{n}"},
                        headers={"Authorization": f"Bearer {key}"},
                    )
                except httpx.HTTPError:  # a connection lost: a client-visible error too
                    statuses[0] += 1
                    return
                statuses[answer.status_code] += 1

        await asyncio.gather(*(one(n) for n in range(count)))
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    faults = Faults(fault_rate=args.fault_rate, hang_s=0.6)
    with tempfile.TemporaryDirectory() as folder, serve_in_thread(faulty_upstream(faults)) as up:  # type: ignore[arg-type]
        workspace = Path(folder)
        settings = Settings(
            workspace=workspace,
            database={"url": f"sqlite:///{workspace / 'bench.db'}"},
            api={"rate_limit_per_minute": 0},
            serving={
                "upstreams": {
                    MODEL: {"base_url": f"{up}/v1", "timeout_seconds": 0.25, "tenant": TENANT}
                },
                "breaker": {"open_seconds": 1.0},
            },
        )
        app = create_app(settings)
        with serve_in_thread(app) as url:
            engine = app.state.resources.engine
            record_model_version(
                engine, TENANT, model_id=MODEL, version="1", base_model="x", status="challenger"
            )
            set_champion(engine, TENANT, MODEL, "1")
            key = create_api_key(engine, TENANT, role=Role.OPERATOR).plaintext
            started = time.perf_counter()
            statuses = asyncio.run(calls(url, key, args.calls, args.concurrency))
            seconds = time.perf_counter() - started
            served = sum(faults.served.values())
            upstream_rate = 1 - faults.served.get("ok", 0) / served
            client_rate = 1 - statuses[200] / args.calls
            faults.down = True
            asyncio.run(calls(url, key, 200, args.concurrency))
            faults.down, faults.fault_rate = False, 0.0
            back = time.perf_counter()
            while asyncio.run(calls(url, key, 5, 5))[200] < 5:
                time.sleep(0.05)
            recovery = time.perf_counter() - back
    print(f"{args.calls} calls in {seconds:.1f} s, client statuses {dict(statuses)}")
    print(f"upstream fault rate {upstream_rate:.3f}, client error rate {client_rate:.3f}")
    print(f"ratio client/upstream errors: {client_rate / upstream_rate:.2f}")
    print(f"recovery after a full outage: {recovery:.2f} s")


if __name__ == "__main__":
    main()
