"""Experiments repository (tenant-scoped): add, find, list, locked updates, day-numbered keys."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date

from sqlalchemy import Engine, Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tuneloop.domain.experiments import ExperimentStatus
from tuneloop.errors import ConflictError, NotFoundError
from tuneloop.store.db import read_page
from tuneloop.store.experiment_models import Experiment

KEY_PREFIX = "ab-test"


def add_experiment(engine: Engine, experiment: Experiment) -> Experiment:
    """Store a new experiment; a key already used in the tenant is a ``ConflictError``."""
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            session.add(experiment)
    except IntegrityError:
        raise ConflictError(
            f"experiment {experiment.key!r} already exists for tenant {experiment.tenant_id!r}"
        ) from None
    return experiment


def get_experiment(engine: Engine, tenant_id: str, key: str) -> Experiment:
    with Session(engine, expire_on_commit=False) as session:
        found = session.get(Experiment, (tenant_id, key))
    if found is None:
        raise NotFoundError(f"experiment {key!r} not found for tenant {tenant_id!r}")
    return found


def _newest_first(tenant_id: str, status: str | None = None) -> Select[Experiment]:
    query = select(Experiment).where(Experiment.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Experiment.status == status)
    return query.order_by(Experiment.created_at.desc(), Experiment.key.desc())


def list_experiments(
    engine: Engine,
    tenant_id: str,
    *,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Sequence[Experiment]:
    """Newest first."""
    query = _newest_first(tenant_id, status).limit(limit).offset(offset)
    with Session(engine, expire_on_commit=False) as session:
        return session.scalars(query).all()


def experiments_page(
    engine: Engine, tenant_id: str, *, limit: int = 50, offset: int = 0
) -> tuple[Sequence[Experiment], int]:
    """A page of the tenant's experiments, newest first, and their total: one transaction."""
    count = select(func.count()).where(Experiment.tenant_id == tenant_id)
    return read_page(engine, _newest_first(tenant_id).limit(limit).offset(offset), count)


def update_experiment(
    engine: Engine, tenant_id: str, key: str, change: Callable[[Experiment], None]
) -> Experiment:
    """Apply ``change`` to the row under a lock; if it raises, nothing is written."""
    query = (
        select(Experiment)
        .where(Experiment.tenant_id == tenant_id, Experiment.key == key)
        .with_for_update()  # PostgreSQL locks the row; SQLite's writer lock serialises anyway
    )
    with Session(engine, expire_on_commit=False) as session, session.begin():
        found = session.scalars(query).one_or_none()
        if found is None:
            raise NotFoundError(f"experiment {key!r} not found for tenant {tenant_id!r}")
        change(found)
    return found


def next_experiment_key(engine: Engine, tenant_id: str, day: date) -> str:
    """The next free key of the day for the tenant: ``ab-test-20250102-001``, ``-002``, ..."""
    prefix = f"{KEY_PREFIX}-{day:%Y%m%d}-"
    query = select(Experiment.key).where(
        Experiment.tenant_id == tenant_id, Experiment.key.startswith(prefix, autoescape=True)
    )
    with engine.connect() as connection:
        keys = connection.execute(query).scalars().all()
    numbers = [int(key[len(prefix) :]) for key in keys if key[len(prefix) :].isdigit()]
    return f"{prefix}{max(numbers, default=0) + 1:03d}"


def experiments_by_key(
    engine: Engine, tenant_id: str, keys: Iterable[str]
) -> dict[str, Experiment]:
    """The tenant's experiments among ``keys`` (unknown keys are simply absent)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    query = select(Experiment).where(Experiment.tenant_id == tenant_id, Experiment.key.in_(wanted))
    with Session(engine, expire_on_commit=False) as session:
        return {row.key: row for row in session.scalars(query)}


def tenants_with_running_experiment(engine: Engine) -> list[str]:
    """Every tenant with a running experiment (serving warms their routes)."""
    query = (
        select(Experiment.tenant_id)
        .where(Experiment.status == ExperimentStatus.RUNNING.value)
        .distinct()
    )
    with Session(engine) as session:
        return list(session.scalars(query).all())
