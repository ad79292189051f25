"""Why a run would or would not start now, per tenant, as plain data (``schedule show``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.worker.actions import LoopActions
from tuneloop.worker.decide import decide
from tuneloop.worker.readings import read_state


def explain(
    engine: Engine, settings: Settings, actions: LoopActions, tenant_id: str, *, now: datetime
) -> dict[str, Any]:
    active = actions.active_run_id(tenant_id)
    state = read_state(engine, settings, tenant_id, now=now, active_run=active)
    verdict = decide(state)
    return {
        "tenant": tenant_id,
        "cron": state.cron,
        "timezone": state.timezone,
        "next_fire": state.next_fire.isoformat(),
        "due_fire": None if state.due_fire is None else state.due_fire.isoformat(),
        "active_run": state.active_run,
        "last_run_at": None if state.last_run_at is None else state.last_run_at.isoformat(),
        "triggers": [
            {
                "trigger": str(r.trigger),
                "value": r.value,
                "threshold": r.threshold,
                "fires": r.fires,
                "detail": r.detail,
            }
            for r in state.readings
        ],
        "start": verdict.start,
        "trigger": None if verdict.trigger is None else str(verdict.trigger),
        "reasons": list(verdict.reasons),
    }


def explain_all(
    engine: Engine, settings: Settings, actions: LoopActions, *, now: datetime
) -> list[dict[str, Any]]:
    return [explain(engine, settings, actions, t, now=now) for t in actions.tenants()]
