"""Worker test helpers: a recording LoopActions on the real store, and quiet settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.domain.clock import Clock
from tuneloop.domain.runs import RunStatus, Trigger
from tuneloop.store import runs as runs_repo
from tuneloop.store.schedules import known_tenants

TENANT = "acme"


@dataclass
class RecordingActions:
    """Starts real (pending) runs in the store without executing them; records every call."""

    engine: Engine
    clock: Clock
    started: list[tuple[str, Trigger, str]] = field(default_factory=list)
    advanced: int = 0
    rollout_ticks: int = 0

    def tenants(self) -> list[str]:
        return known_tenants(self.engine, always=(TENANT,))

    def active_run_id(self, tenant: str) -> str | None:
        run = runs_repo.active_run(self.engine, tenant)
        return None if run is None else run.id

    def start_run(self, tenant: str, trigger: Trigger) -> str:
        run = runs_repo.create_run(
            self.engine, tenant, trigger=trigger.value, config={}, now=self.clock.now()
        )
        self.started.append((tenant, trigger, run.id))
        return run.id

    def advance_runs(self) -> int:
        self.advanced += 1
        return 0

    def tick_rollouts(self) -> int:
        self.rollout_ticks += 1
        return 0

    def close(self, *, interrupt: bool = True) -> None:
        pass


def finish(engine: Engine, tenant: str, run_id: str) -> None:
    runs_repo.move_run(engine, tenant, run_id, RunStatus.ABORTED)


def quiet(settings: Settings, **triggers: Any) -> Settings:
    """Every trigger off and no cool-down, except what the test turns on."""
    values = {
        "min_new_examples": None,
        "drift_drop": None,
        "max_model_age_days": None,
        "cooldown_hours": 0.0,
    } | triggers
    return settings.model_copy(
        update={
            "triggers": settings.triggers.model_validate(settings.triggers.model_dump() | values)
        }
    )
