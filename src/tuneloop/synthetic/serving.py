"""Simulated clients: units routed by the real routing table, events through real ingestion.

Each unit asks ``routing_table`` which model serves it (an experiment's arm, a rollout's
side, or the champion), "generates" one post with that model, and reports a generation
event and, unless the call failed, an outcome with its engagement — exactly what a client
of ``/v1/route`` and ``/v1/events`` sends. How each route performs is a ``Behaviour``
chosen by the caller, so a demo or a test can give a candidate a real lift, or make it
degrade once it is rolled out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine

from tuneloop.events.ingest import IngestReport, ingest_events
from tuneloop.rollout.routing import HoldoutPolicy, Route, routing_table


@dataclass(frozen=True)
class Behaviour:
    """How a model performs: mean engagement, share of failed calls, latency, cost."""

    engagement: float = 0.05
    error_rate: float = 0.01
    latency_ms: float = 800.0
    cost_per_token: float = 6e-7


def serve_units(
    engine: Engine,
    tenant_id: str,
    *,
    units: int,
    seed: int,
    at: datetime,
    behaviour: Callable[[Route], Behaviour],
    prefix: str = "unit",
    holdout: HoldoutPolicy | None = None,
) -> tuple[Counter[str], IngestReport]:
    """Route ``units`` new units at ``at`` (events in the hour before); count per model label."""
    table = routing_table(engine, tenant_id, holdout=holdout)
    rng = np.random.default_rng(seed)
    served: Counter[str] = Counter()
    events: list[dict[str, Any]] = []
    for index in range(units):
        unit = f"{prefix}-{seed}-{index}"
        route = table.route(unit)
        served[route.model] += 1
        events.extend(_events(unit, route, behaviour(route), rng, at))
    return served, ingest_events(engine, tenant_id, events, now=at)


def _events(
    unit: str, route: Route, b: Behaviour, rng: np.random.Generator, at: datetime
) -> list[dict[str, Any]]:
    ts = at - timedelta(minutes=float(rng.uniform(1, 60)))
    failed = bool(rng.random() < b.error_rate)
    common: dict[str, Any] = {
        "unit_id": unit,
        "model_id": route.model,
        "generation_id": f"g-{unit}",
    }
    exposure: list[dict[str, Any]] = []
    if route.experiment_key is not None:
        common |= {"experiment_key": route.experiment_key, "arm": route.arm}
        exposure = [{"idempotency_key": f"{unit}:x", "kind": "exposure", "ts": ts, **common}]
    tokens = int(rng.integers(200, 400))
    generation = {
        "idempotency_key": f"{unit}:g",
        "kind": "generation",
        "tokens": tokens,
        "cost": tokens * b.cost_per_token,
        "latency_ms": float(b.latency_ms * np.exp(0.3 * rng.standard_normal() - 0.045)),
        "error": failed,
        "ts": ts,
        **common,
    }
    if failed:
        return [*exposure, generation]
    engagement = b.engagement * float(np.exp(0.5 * rng.standard_normal() - 0.125))
    outcome = {
        "idempotency_key": f"{unit}:o",
        "kind": "outcome",
        "engagement": engagement,
        "ts": ts + timedelta(seconds=30),
        **common,
    }
    return [*exposure, generation, outcome]
