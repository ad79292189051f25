"""Who owns a tenant's live traffic: a rollout or A/B tests, never both at once.

The policy (docs/decisions/0013-traffic-owner.md):

- **a rollout owns the traffic while it is active**: an A/B test cannot start then (409);
  routing gives experiments precedence, so one started during a rollout would take its
  units and starve it of the data its steps wait for;
- **a deployment closes the A/B test it was evaluated on**, and is refused while any other
  test is running (the rollout would hold forever behind it);
- **one test per set of models**: a second running (or draft) test of the same models is
  refused; use the first, or stop it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from tuneloop.domain.experiments import ArmSpec
from tuneloop.errors import ConflictError
from tuneloop.store.deployments import active_deployment
from tuneloop.store.experiments import list_experiments


def check_no_rollout(engine: Engine, tenant_id: str) -> None:
    """Refuse to start an experiment while a rollout owns the tenant's traffic."""
    found = active_deployment(engine, tenant_id)
    if found is not None:
        raise ConflictError(
            f"deployment {found.id} is rolling out {found.model_id}@{found.version} for "
            f"tenant {tenant_id!r} and owns its live traffic; start the A/B test once it "
            "has completed or been rolled back"
        )


def check_not_a_duplicate(
    engine: Engine, tenant_id: str, arms: Sequence[ArmSpec], *, key: str | None = None
) -> None:
    """Refuse a second running or draft test of the same models."""
    models = {(arm.model_id, arm.version) for arm in arms}
    for status in ("running", "draft"):
        for row in list_experiments(engine, tenant_id, status=status, limit=1000):
            same = {(arm["model_id"], arm["version"]) for arm in row.arms} == models
            if same and row.key != key:
                shown = " vs ".join(f"{m}@{v}" for m, v in sorted(models))
                raise ConflictError(
                    f"experiment {row.key} ({row.status}) already tests {shown}; "
                    f"use it, or stop it first (tuneloop experiments stop {row.key})"
                )


def check_no_other_test(engine: Engine, tenant_id: str, evaluated: str | None) -> None:
    """Refuse a rollout while an A/B test other than ``evaluated`` holds the traffic."""
    for row in list_experiments(engine, tenant_id, status="running", limit=1000):
        if row.key != evaluated:
            raise ConflictError(
                f"experiment {row.key} is running for tenant {tenant_id!r} and would keep "
                f"every unit from the rollout; stop it first (tuneloop experiments stop {row.key})"
            )
