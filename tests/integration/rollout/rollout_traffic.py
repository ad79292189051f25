"""Simulated serving for rollout tests: each unit is routed, then its events are ingested."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine

from tuneloop.events.ingest import ingest_events
from tuneloop.rollout.routing import routing_table


@dataclass(frozen=True)
class Behaviour:
    """How a model performs: mean engagement, share of failed calls, mean latency."""

    engagement: float = 0.05
    error_rate: float = 0.01
    latency_ms: float = 800.0


def serve(
    engine: Engine,
    tenant_id: str,
    *,
    units: int,
    seed: int,
    at: datetime,
    behaviour: dict[str, Behaviour],
) -> Counter[str]:
    """Route ``units`` new units at ``at`` (events in the hour before); count per model."""
    table = routing_table(engine, tenant_id)
    rng = np.random.default_rng(seed)
    served: Counter[str] = Counter()
    events: list[dict[str, Any]] = []
    for index in range(units):
        unit = f"unit-{seed}-{index}"
        model = table.route(unit).model
        served[model] += 1
        events.extend(_events(unit, model, behaviour.get(model, Behaviour()), rng, at))
    report = ingest_events(engine, tenant_id, events, now=at)
    assert report.rejected == 0, report.problems[:3]
    return served


def _events(
    unit: str, model: str, b: Behaviour, rng: np.random.Generator, at: datetime
) -> list[dict[str, Any]]:
    ts = at - timedelta(minutes=float(rng.uniform(1, 60)))
    failed = bool(rng.random() < b.error_rate)
    common = {"unit_id": unit, "model_id": model, "generation_id": f"g-{unit}"}
    generation = {
        "idempotency_key": f"{unit}:g",
        "kind": "generation",
        "tokens": 300,
        "cost": 1.8e-4,
        "latency_ms": float(b.latency_ms * np.exp(0.3 * rng.standard_normal() - 0.045)),
        "error": failed,
        "ts": ts,
        **common,
    }
    if failed:
        return [generation]
    engagement = b.engagement * float(np.exp(0.5 * rng.standard_normal() - 0.125))
    outcome = {
        "idempotency_key": f"{unit}:o",
        "kind": "outcome",
        "engagement": engagement,
        "ts": ts + timedelta(seconds=30),
        **common,
    }
    return [generation, outcome]
