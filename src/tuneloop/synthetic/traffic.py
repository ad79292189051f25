"""Synthetic experiment traffic: exposures, generations and outcomes with a known true lift.

Each unit is assigned with the real ``Assigner`` (so the split and its SRM check are
exercised), is exposed once, and writes ``posts_per_unit`` posts. Every post is one
``generation`` event (tokens, cost, latency, error) and, unless the generation failed,
one ``outcome`` event with its engagement. Engagement is log-normal with mean exactly
``base_rate`` in the baseline and ``base_rate * (1 + lift)`` in every other arm; ``noise``
is the log-normal sigma. Same spec and seed, same events (and the same idempotency keys,
so simulating twice stores nothing new).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from tuneloop.experiments.assignment import Assigner


@dataclass(frozen=True)
class TrafficSpec:
    experiment_key: str
    arms: Sequence[tuple[str, float]]  # (name, weight); the first is the baseline
    units: int = 10_000
    seed: int = 7
    base_rate: float = 0.05
    lift: float = 0.10  # relative engagement lift of the non-baseline arms
    noise: float = 0.5  # log-normal sigma of engagement per post
    posts_per_unit: int = 1
    tokens_mean: float = 300.0
    cost_per_token: float = 6e-7  # USD, baseline
    cost_change: float = 0.0  # relative change of cost per token in the other arms
    latency_ms: float = 800.0  # mean, baseline
    latency_change: float = 0.0
    error_rate: float = 0.01
    chunk_units: int = 2_000
    models: dict[str, str] | None = None  # arm name -> model id, recorded on each event


def generate_traffic(
    spec: TrafficSpec, *, now: datetime | None = None
) -> Iterator[list[dict[str, Any]]]:
    """Yield lists of event dicts (the shape ``EventIn`` validates), a chunk of units at a time."""
    rng = np.random.default_rng(spec.seed)
    assigner = Assigner(spec.experiment_key, spec.arms)
    baseline = spec.arms[0][0]
    start = (now or datetime.now(UTC)) - timedelta(hours=2)
    for first in range(0, spec.units, spec.chunk_units):
        units = [
            f"unit-{spec.seed}-{index}"
            for index in range(first, min(first + spec.chunk_units, spec.units))
        ]
        arms = assigner.assign_many(units)
        treated = np.array([arm != baseline for arm in arms], dtype=bool)
        yield _chunk(spec, rng, units, arms, treated, start)


def _chunk(
    spec: TrafficSpec,
    rng: np.random.Generator,
    units: list[str],
    arms: list[str],
    treated: np.ndarray,
    start: datetime,
) -> list[dict[str, Any]]:
    shape = (len(units), spec.posts_per_unit)
    draws = _draws(spec, rng, shape, treated)
    prefix = f"{spec.experiment_key}:{spec.seed}"
    events: list[dict[str, Any]] = []
    for row, (unit, arm) in enumerate(zip(units, arms, strict=True)):
        common: dict[str, Any] = {
            "experiment_key": spec.experiment_key,
            "unit_id": unit,
            "arm": arm,
        }
        if spec.models:
            common["model_id"] = spec.models.get(arm)
        ts = start + timedelta(seconds=float(draws["offset"][row]))
        events.append(
            {"idempotency_key": f"{prefix}:{unit}:x", "kind": "exposure", "ts": ts, **common}
        )
        for post in range(spec.posts_per_unit):
            events.extend(_post_events(prefix, unit, post, common, draws, row, ts))
    return events


def _draws(
    spec: TrafficSpec, rng: np.random.Generator, shape: tuple[int, int], treated: np.ndarray
) -> dict[str, np.ndarray]:
    """All random numbers of a chunk at once (vectorised)."""
    column = treated[:, None]
    mean = spec.base_rate * np.where(column, 1.0 + spec.lift, 1.0)
    sigma = spec.noise
    engagement = mean * np.exp(sigma * rng.standard_normal(shape) - sigma * sigma / 2.0)
    tokens = np.maximum(1, rng.poisson(spec.tokens_mean, shape))
    cpt = spec.cost_per_token * np.where(column, 1.0 + spec.cost_change, 1.0)
    latency_mean = spec.latency_ms * np.where(column, 1.0 + spec.latency_change, 1.0)
    latency = latency_mean * np.exp(0.3 * rng.standard_normal(shape) - 0.045)
    return {
        "engagement": engagement,
        "tokens": tokens,
        # A call's price per token varies with its prompt / completion mix.
        "cost": tokens * cpt * np.exp(0.2 * rng.standard_normal(shape) - 0.02),
        "latency": latency,
        "error": rng.random(shape) < spec.error_rate,
        "offset": rng.uniform(0.0, 3600.0, shape[0]),
    }


def _post_events(
    prefix: str,
    unit: str,
    post: int,
    common: dict[str, Any],
    draws: dict[str, np.ndarray],
    row: int,
    ts: datetime,
) -> list[dict[str, Any]]:
    post_id = f"post-{unit}-{post}"
    generation_id = f"gen-{unit}-{post}"
    error = bool(draws["error"][row, post])
    links = {"post_id": post_id, "generation_id": generation_id, **common}
    generation = {
        "idempotency_key": f"{prefix}:{unit}:{post}:g",
        "kind": "generation",
        "tokens": int(draws["tokens"][row, post]),
        "cost": float(draws["cost"][row, post]),
        "latency_ms": float(draws["latency"][row, post]),
        "error": error,
        "ts": ts,
        **links,
    }
    if error:
        return [generation]
    outcome = {
        "idempotency_key": f"{prefix}:{unit}:{post}:o",
        "kind": "outcome",
        "engagement": float(draws["engagement"][row, post]),
        "ts": ts + timedelta(hours=1),
        **links,
    }
    return [generation, outcome]
