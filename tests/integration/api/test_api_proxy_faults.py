"""Fault injection: the proxy in front of an upstream failing 30 % of its calls at random.

tuneloop and the upstream stand-in (``faulty_upstream``: 429 with Retry-After, 500, 503,
hangs past the proxy's timeout, 200s that are not completions) both run under uvicorn on
loopback; a few thousand concurrent chat calls go through. What must hold:

- client-visible errors stay near the upstream's own fault rate (the old breaker, opening on
  3 consecutive failures, turned 26 % upstream faults into ~70 % client errors);
- after a full outage, service comes back within seconds of the upstream's recovery;
- every call is recorded as a generation event, with its error flag;
- the upstream's breaker is visible in ``/health`` and ``/metrics``.

The measured numbers are printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from api_helpers import TENANT_A, with_api
from fake_openai import serve_in_thread
from faulty_upstream import Faults, faulty_upstream
from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session

from tuneloop.api.app import create_app
from tuneloop.config import ServingSettings, Settings, UpstreamBreakerSettings, UpstreamSettings
from tuneloop.serving.service import Serving
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.store.experiment_models import OutcomeEvent
from tuneloop.store.models_registry import record_model_version, set_champion

MODEL = "acme-hook"
FALLBACK = "gpt-base"  # a shared provider model on a healthy upstream
CALLS = 2000
CONCURRENCY = 32
OPEN_SECONDS = 3.0  # room to read /health and /metrics while it is open, on a busy machine
BODY = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}

pytestmark = pytest.mark.slow


@dataclass
class Proxy:
    url: str
    key: str
    engine: Engine
    serving: Serving
    faults: Faults

    async def calls(self, count: int, *, concurrency: int = CONCURRENCY) -> Counter[int]:
        statuses: Counter[int] = Counter()
        gate = asyncio.Semaphore(concurrency)
        headers = {"Authorization": f"Bearer {self.key}"}
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=self.url, limits=limits, timeout=10) as http:

            async def one(n: int) -> None:
                async with gate:
                    body = BODY | {"user": f"u-{n}"}
                    answer = await http.post("/v1/chat/completions", json=body, headers=headers)
                    statuses[answer.status_code] += 1

            await asyncio.gather(*(one(n) for n in range(count)))
        return statuses

    def generations(self) -> tuple[int, int]:
        """(generation events, those with error) stored so far."""
        assert self.serving.recorder.flush(30)
        query = select(func.count(), func.sum(case((OutcomeEvent.error, 1), else_=0)))
        query = query.where(OutcomeEvent.tenant_id == TENANT_A, OutcomeEvent.kind == "generation")
        with Session(self.engine) as session:
            total, errors = session.execute(query).one()
        return int(total), int(errors or 0)


@contextmanager
def _proxy(settings: Settings, *, fallback: bool) -> Iterator[Proxy]:
    faults = Faults(fault_rate=0.3, hang_s=0.6)
    with (
        serve_in_thread(faulty_upstream(faults)) as upstream_url,  # type: ignore[arg-type]
        serve_in_thread(faulty_upstream(Faults(fault_rate=0.0))) as spare_url,  # type: ignore[arg-type]
    ):
        upstream = UpstreamSettings(
            base_url=f"{upstream_url}/v1",
            timeout_seconds=0.25,
            tenant=TENANT_A,
            fallback=f"{FALLBACK}@1" if fallback else None,
        )
        spare = UpstreamSettings(base_url=f"{spare_url}/v1", shared=True)
        serving = ServingSettings(
            upstreams={MODEL: upstream, FALLBACK: spare},
            breaker=UpstreamBreakerSettings(open_seconds=OPEN_SECONDS),
        )
        settings = with_api(settings, rate_limit_per_minute=0)
        app = create_app(settings.model_copy(update={"serving": serving}))
        with serve_in_thread(app) as url:
            engine: Engine = app.state.resources.engine
            record_model_version(
                engine, TENANT_A, model_id=MODEL, version="1", base_model="x", status="challenger"
            )
            set_champion(engine, TENANT_A, MODEL, "1")
            key = create_api_key(engine, TENANT_A, role=Role.OPERATOR).plaintext
            yield Proxy(url, key, engine, app.state.serving, faults)


@pytest.fixture
def proxy(sqlite_settings: Settings) -> Iterator[Proxy]:
    with _proxy(sqlite_settings, fallback=False) as served:
        yield served


def test_random_faults_reach_clients_at_about_the_upstreams_rate(proxy: Proxy) -> None:
    started = time.perf_counter()
    statuses = asyncio.run(proxy.calls(CALLS))
    seconds = time.perf_counter() - started
    served = sum(proxy.faults.served.values())
    upstream_rate = 1 - proxy.faults.served.get("ok", 0) / served
    client_rate = 1 - statuses[200] / CALLS
    print(
        f"\n{CALLS} calls in {seconds:.1f} s; upstream fault rate {upstream_rate:.3f}, "
        f"client error rate {client_rate:.3f} (ratio {client_rate / upstream_rate:.2f}); "
        f"client statuses {dict(statuses)}; upstream {proxy.faults.served}"
    )
    assert served >= CALLS * 0.95  # the breaker barely refused anything
    assert client_rate <= upstream_rate + 0.03
    assert statuses[503] <= proxy.faults.served.get("503", 0) + CALLS * 0.02  # few circuit_open
    assert set(statuses) <= {200, 429, 500, 502, 503, 504}
    total, errors = proxy.generations()
    assert total == CALLS  # every call recorded, the failed ones too
    assert errors == CALLS - statuses[200]


def test_service_comes_back_within_seconds_of_the_upstream(proxy: Proxy) -> None:
    proxy.faults.down = True
    during = asyncio.run(proxy.calls(200))
    health = httpx.get(f"{proxy.url}/health").json()
    [(name, breaker)] = health["upstream_circuit_breakers"].items()
    assert name == f"upstream:{MODEL}" and breaker["state"] == "OPEN"
    assert health["status"] == "degraded"
    metrics = httpx.get(f"{proxy.url}/metrics").text
    assert f'tuneloop_upstream_circuit_breaker_state{{state="OPEN",upstream="{name}"}} 1.0' in (
        metrics
    )
    proxy.faults.down = False
    proxy.faults.fault_rate = 0.0
    recovered_at = time.perf_counter()
    while asyncio.run(proxy.calls(5, concurrency=5))[200] < 5:
        assert time.perf_counter() - recovered_at < OPEN_SECONDS + 5, "did not recover"
        time.sleep(0.05)
    recovery = time.perf_counter() - recovered_at
    print(f"\noutage: {dict(during)}; served again {recovery:.2f} s after the upstream recovered")
    assert during[200] == 0 and during[503] >= 150  # mostly refused by the open breaker
    assert recovery <= OPEN_SECONDS + 1.0
    after = httpx.get(f"{proxy.url}/health").json()["upstream_circuit_breakers"][name]
    assert after["state"] == "CLOSED"


def test_with_a_fallback_an_outage_is_served_by_the_fallback_model(
    sqlite_settings: Settings,
) -> None:
    with _proxy(sqlite_settings, fallback=True) as proxy:
        proxy.faults.down = True
        statuses = asyncio.run(proxy.calls(300))
        total, errors = proxy.generations()
    print(f"\noutage with a fallback: client statuses {dict(statuses)}")
    # Until the breaker opens (its minimum of calls) the outage shows; then the fallback serves.
    assert statuses[200] >= 300 - UpstreamBreakerSettings().minimum_calls - 40
    assert total == 300 and errors == 300 - statuses[200]  # one event per call, as answered
