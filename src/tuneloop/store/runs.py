"""Pipeline runs repository: create (one active per tenant), claim, heartbeat, steps, jobs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tuneloop.domain.runs import ACTIVE, STEPS, RunStatus, StepStatus, can_move
from tuneloop.errors import ConflictError, InvalidStateError, NotFoundError
from tuneloop.store.pipeline_models import PipelineRun, PipelineStep, TrainingJob
from tuneloop.store.types import utcnow


def create_run(
    engine: Engine,
    tenant_id: str,
    *,
    trigger: str,
    config: dict[str, Any],
    now: datetime | None = None,
) -> PipelineRun:
    """A new pending run with its steps; ConflictError names the run that is already active."""
    now = now or utcnow()
    prefix = f"ft-pipeline-{now:%Y%m%d}-"
    for _ in range(20):
        with Session(engine, expire_on_commit=False) as session:
            active = _active(session, tenant_id)
            if active is not None:
                raise ConflictError(
                    f"run {active.id} is already active for tenant {tenant_id!r} "
                    f"({active.status}); abort it or let it finish"
                )
            count = session.scalar(
                select(func.count()).where(
                    PipelineRun.tenant_id == tenant_id, PipelineRun.id.startswith(prefix)
                )
            )
            run = PipelineRun(
                tenant_id=tenant_id,
                id=f"{prefix}{(count or 0) + 1:03d}",
                status=RunStatus.PENDING,
                trigger=trigger,
                config=config,
                abort_requested=False,
                created_at=now,
            )
            session.add(run)
            session.add_all(
                PipelineStep(
                    tenant_id=tenant_id,
                    run_id=run.id,
                    name=name,
                    position=index,
                    status=StepStatus.PENDING,
                    attempts=0,
                )
                for index, name in enumerate(STEPS)
            )
            try:
                session.commit()
                return run
            except IntegrityError:
                session.rollback()  # a racing start took the id or the active slot: look again
    raise ConflictError(f"could not allocate a run id for tenant {tenant_id!r}")


def _active(session: Session, tenant_id: str) -> PipelineRun | None:
    statement = select(PipelineRun).where(
        PipelineRun.tenant_id == tenant_id, PipelineRun.status.in_([s.value for s in ACTIVE])
    )
    return session.scalars(statement).first()


def active_run(engine: Engine, tenant_id: str) -> PipelineRun | None:
    with Session(engine, expire_on_commit=False) as session:
        return _active(session, tenant_id)


def runs_with_status(engine: Engine, status: str) -> list[tuple[str, str]]:
    """``(tenant_id, run_id)`` of every run in ``status``, all tenants, oldest first."""
    statement = (
        select(PipelineRun.tenant_id, PipelineRun.id)
        .where(PipelineRun.status == status)
        .order_by(PipelineRun.created_at, PipelineRun.tenant_id, PipelineRun.id)
    )
    with engine.connect() as connection:
        return [(str(t), str(i)) for t, i in connection.execute(statement).all()]


def get_run(engine: Engine, tenant_id: str, run_id: str) -> PipelineRun:
    with Session(engine, expire_on_commit=False) as session:
        run = session.get(PipelineRun, (tenant_id, run_id))
    if run is None:
        raise NotFoundError(f"pipeline run {run_id!r} not found")
    return run


def list_runs(
    engine: Engine,
    tenant_id: str,
    *,
    limit: int = 50,
    offset: int = 0,
    status: str | None = None,
) -> tuple[Sequence[PipelineRun], int]:
    """A page of the tenant's runs (only those in ``status`` when given), newest first."""
    where = PipelineRun.tenant_id == tenant_id
    if status is not None:
        where = where & (PipelineRun.status == status)
    with Session(engine, expire_on_commit=False) as session:
        total = session.scalar(select(func.count()).select_from(PipelineRun).where(where)) or 0
        rows = session.scalars(
            select(PipelineRun)
            .where(where)
            .order_by(PipelineRun.created_at.desc(), PipelineRun.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
    return rows, total


def steps_of(engine: Engine, tenant_id: str, run_id: str) -> list[PipelineStep]:
    statement = (
        select(PipelineStep)
        .where(PipelineStep.tenant_id == tenant_id, PipelineStep.run_id == run_id)
        .order_by(PipelineStep.position)
    )
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(statement).all())


def move_run(
    engine: Engine, tenant_id: str, run_id: str, status: RunStatus, **fields: Any
) -> PipelineRun:
    """Change a run's status along an allowed transition, with any other fields."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        run = session.get(PipelineRun, (tenant_id, run_id), with_for_update=True)
        if run is None:
            raise NotFoundError(f"pipeline run {run_id!r} not found")
        if run.status != status and not can_move(RunStatus(run.status), status):
            raise InvalidStateError(f"run {run_id} is {run.status}; it cannot become {status}")
        run.status = status
        for key, value in fields.items():
            setattr(run, key, value)
    return run


def update_run(engine: Engine, tenant_id: str, run_id: str, **fields: Any) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(PipelineRun)
            .where(PipelineRun.tenant_id == tenant_id, PipelineRun.id == run_id)
            .values(**fields)
        )


def update_step(engine: Engine, tenant_id: str, run_id: str, name: str, **fields: Any) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(PipelineStep)
            .where(
                PipelineStep.tenant_id == tenant_id,
                PipelineStep.run_id == run_id,
                PipelineStep.name == name,
            )
            .values(**fields)
        )


def claim(engine: Engine, tenant_id: str, run_id: str, *, expected: str | None, owner: str) -> bool:
    """Compare-and-set the run's lease from ``expected`` to ``owner``; False if someone else won."""
    condition = (
        PipelineRun.lease_owner.is_(None)
        if expected is None
        else PipelineRun.lease_owner == expected
    )
    with Session(engine) as session, session.begin():
        result = session.execute(
            update(PipelineRun)
            .where(PipelineRun.tenant_id == tenant_id, PipelineRun.id == run_id, condition)
            .values(lease_owner=owner, heartbeat_at=utcnow())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def heartbeat(engine: Engine, tenant_id: str, run_id: str, *, owner: str) -> bool:
    """Renew the lease; returns whether an abort was requested."""
    with Session(engine) as session, session.begin():
        session.execute(
            update(PipelineRun)
            .where(
                PipelineRun.tenant_id == tenant_id,
                PipelineRun.id == run_id,
                PipelineRun.lease_owner == owner,
            )
            .values(heartbeat_at=utcnow())
        )
        flag = session.scalar(
            select(PipelineRun.abort_requested).where(
                PipelineRun.tenant_id == tenant_id, PipelineRun.id == run_id
            )
        )
    return bool(flag)


def request_abort(engine: Engine, tenant_id: str, run_id: str, *, reason: str) -> PipelineRun:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        run = session.get(PipelineRun, (tenant_id, run_id), with_for_update=True)
        if run is None:
            raise NotFoundError(f"pipeline run {run_id!r} not found")
        if run.status not in {s.value for s in ACTIVE}:
            raise InvalidStateError(
                f"run {run_id} is {run.status}; only an active run can be aborted"
            )
        run.abort_requested = True
        run.abort_reason = reason
    return run


def training_job_for(session: Session, tenant_id: str, run_id: str) -> TrainingJob | None:
    return session.get(TrainingJob, (tenant_id, run_id))
