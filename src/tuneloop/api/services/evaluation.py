"""What the ``/evaluation`` routes call: create-and-start, and a page of A/B tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from tuneloop.config import UpstreamSettings
from tuneloop.domain.experiments import SuccessCriteria
from tuneloop.experiments import service
from tuneloop.experiments.references import Servable, resolve_model
from tuneloop.experiments.service import ModelRef, two_arms
from tuneloop.store.experiment_models import Experiment


@dataclass(frozen=True)
class AbTestPage:
    items: Sequence[Experiment]
    total: int
    limit: int
    offset: int


def create_ab_test(
    engine: Engine,
    tenant_id: str,
    *,
    baseline: tuple[str, str | None],
    candidate: tuple[str, str | None],
    servable: Servable,
    traffic_split: float,
    duration_hours: int,
    criteria: SuccessCriteria,
    upstreams: Mapping[str, UpstreamSettings] | None = None,
) -> Experiment:
    """A two-arm test that starts running at once (as ``tuneloop experiments create``);
    both models are resolved within the tenant first (``experiments.references``)."""
    arms = two_arms(
        ModelRef(*resolve_model(engine, tenant_id, *baseline, servable)),
        ModelRef(*resolve_model(engine, tenant_id, *candidate, servable)),
        traffic_split,
    )
    return service.create_experiment(
        engine,
        tenant_id,
        arms=arms,
        duration_hours=duration_hours,
        success_criteria=criteria,
        start=True,
        upstreams=upstreams,
    )


def ab_test_page(engine: Engine, tenant_id: str, *, limit: int, offset: int) -> AbTestPage:
    items = service.list_experiments(engine, tenant_id, limit=limit, offset=offset)
    query = select(func.count()).select_from(Experiment).where(Experiment.tenant_id == tenant_id)
    with engine.connect() as connection:
        total = int(connection.execute(query).scalar_one())
    return AbTestPage(items, total, limit, offset)
