"""Drive the loop on a manual clock: simulated traffic, rollout ticks, waiting runs advanced.

What the worker does in production (tick rollouts, advance waiting runs) done here in
steps of simulated time, with simulated clients served by the real routing table and
reporting through the real event ingestion. The demo and the loop tests use it; and
``simulate_traffic``, a running experiment's simulated exposures and outcomes
(``tuneloop simulate-traffic``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from tuneloop.app.runs import advance_runs, tick_rollouts
from tuneloop.domain.clock import ManualClock
from tuneloop.domain.experiments import ExperimentStatus
from tuneloop.domain.runs import ACTIVE, RunStatus
from tuneloop.errors import InvalidStateError
from tuneloop.events.ingest import IngestReport, ingest_events
from tuneloop.experiments.service import arm_specs, get_experiment
from tuneloop.rollout.routing import HoldoutPolicy, Route
from tuneloop.store import runs as repo
from tuneloop.synthetic.serving import Behaviour, serve_units
from tuneloop.synthetic.traffic import TrafficSpec, generate_traffic
from tuneloop.wiring import Container


@dataclass(frozen=True)
class Tick:
    """One step of simulated time: what was served and where the run stands after it."""

    number: int
    at: datetime
    served: Counter[str]
    run_status: str
    step: str | None
    rollout_actions: list[str]


def drive_run(
    container: Container,
    clock: ManualClock,
    *,
    tenant: str,
    run_id: str,
    behaviour: Callable[[Route], Behaviour],
    units_per_tick: int = 2000,
    tick: timedelta = timedelta(hours=24),
    max_ticks: int = 40,
    on_tick: Callable[[Tick], None] | None = None,
    seed: int = 0,
) -> RunStatus:
    """Move time on until ``run_id`` finishes (or ``max_ticks``); returns its status.

    Each tick: the clock moves ``tick`` on, ``units_per_tick`` new units are served and
    report their outcomes, active rollouts are ticked, waiting runs are advanced.
    """
    for number in range(1, max_ticks + 1):
        at = clock.advance(tick)
        served, _ = serve_units(
            container.engine,
            tenant,
            units=units_per_tick,
            seed=seed * 1000 + number,
            at=at,
            behaviour=behaviour,
            prefix=f"{run_id}-u",
            holdout=holdout_policy(container),
        )
        actions = [o.action for o in tick_rollouts(container, tenant=tenant)]
        advance_runs(container)
        run = repo.get_run(container.engine, tenant, run_id)
        if on_tick is not None:
            on_tick(Tick(number, at, served, run.status, run.current_step, actions))
        if RunStatus(run.status) not in ACTIVE:
            return RunStatus(run.status)
    return RunStatus(repo.get_run(container.engine, tenant, run_id).status)


def holdout_policy(container: Container) -> HoldoutPolicy | None:
    """The settings' permanent holdout, as routing reads it."""
    e = container.settings.experiments
    return HoldoutPolicy.from_settings(e.holdout_share, e.holdout_model)


def lift_for(
    candidate: str, *, lift: float, base: Behaviour = Behaviour(), degraded: Behaviour | None = None
) -> Callable[[Route], Behaviour]:
    """The candidate (label ``MODEL@VERSION``) earns ``lift`` more engagement and costs 20 %
    less per token; with ``degraded``, it behaves so once a rollout (not a test) serves it."""
    better = Behaviour(
        engagement=base.engagement * (1 + lift),
        error_rate=base.error_rate,
        latency_ms=base.latency_ms,
        cost_per_token=base.cost_per_token * 0.8,
    )

    def behaviour(route: Route) -> Behaviour:
        if route.model != candidate:
            return base
        if degraded is not None and route.source == "deployment":
            return degraded
        return better

    return behaviour


def simulate_traffic(
    engine: Engine, tenant_id: str, key: str, *, spec: TrafficSpec, batch_events: int = 20_000
) -> IngestReport:
    """Generate traffic for a running experiment and ingest it through the normal path.

    ``spec.experiment_key`` and ``spec.arms`` are taken from the stored experiment.
    """
    experiment = get_experiment(engine, tenant_id, key)
    if experiment.status != ExperimentStatus.RUNNING:
        raise InvalidStateError(f"experiment {key!r} is {experiment.status}, not running")
    arms = arm_specs(experiment)
    spec = replace(
        spec,
        experiment_key=key,
        arms=[(arm.name, arm.weight) for arm in arms],
        models={arm.name: arm.model_id for arm in arms},
    )
    total = IngestReport(received=0)
    pending: list[dict[str, Any]] = []
    for chunk in generate_traffic(spec):
        pending.extend(chunk)
        if len(pending) >= batch_events:
            _add(total, ingest_events(engine, tenant_id, pending))
            pending = []
    if pending:
        _add(total, ingest_events(engine, tenant_id, pending))
    return total


def _add(total: IngestReport, part: IngestReport) -> None:
    offset = total.received
    total.received += part.received
    total.accepted += part.accepted
    total.duplicates += part.duplicates
    total.problems.extend(replace(p, index=p.index + offset) for p in part.problems)
