"""Reads one tenant's state for the decision: its schedule, runs, and each trigger's value."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from tuneloop.collect.service import new_qualifying_since_last
from tuneloop.config import Settings
from tuneloop.domain.experiments import Moments
from tuneloop.rollout.checks import model_label
from tuneloop.store import schedules as repo
from tuneloop.store.deployments import engagement_moments
from tuneloop.store.models_registry import champion_of
from tuneloop.worker.decide import TenantState
from tuneloop.worker.schedule import due_fire, next_fire
from tuneloop.worker.triggers import Reading, data_reading, drift_reading, freshness_reading


def schedule_zone(settings: Settings) -> str:
    return settings.worker.timezone or settings.pipeline.timezone


def read_state(
    engine: Engine, settings: Settings, tenant_id: str, *, now: datetime, active_run: str | None
) -> TenantState:
    """``active_run``: the tenant's active run id, as the worker's ``LoopActions`` sees it."""
    schedule = repo.ensure_schedule(engine, tenant_id, now=now)
    cron = schedule.cron or settings.pipeline.weekly_schedule
    zone = schedule_zone(settings)
    return TenantState(
        tenant_id=tenant_id,
        now=now,
        cron=cron,
        timezone=zone,
        next_fire=next_fire(cron, zone, now),
        due_fire=due_fire(
            cron,
            zone,
            now=now,
            anchor=schedule.anchor_at,
            last_claimed=repo.last_fire(engine, tenant_id),
        ),
        active_run=active_run,
        last_run_at=repo.last_run_created(engine, tenant_id),
        cooldown=timedelta(hours=settings.triggers.cooldown_hours),
        readings=read_triggers(engine, settings, tenant_id, now=now),
    )


def read_triggers(
    engine: Engine, settings: Settings, tenant_id: str, *, now: datetime
) -> tuple[Reading, ...]:
    triggers = settings.triggers
    new_posts = (
        new_qualifying_since_last(engine, settings, tenant_id, now=now)
        if triggers.min_new_examples is not None
        else 0
    )
    champion = champion_of(engine, tenant_id)
    baseline, recent = (
        (None, None)
        if champion is None
        else champion_windows(
            engine, settings, tenant_id, model_label(champion.model_id, champion.version), now=now
        )
    )
    return (
        data_reading(new_posts, triggers.min_new_examples),
        drift_reading(
            baseline,
            recent,
            drop=triggers.drift_drop,
            alpha=triggers.drift_alpha,
            min_units=triggers.drift_min_units,
        ),
        freshness_reading(
            None if champion is None else champion.created_at, now, triggers.max_model_age_days
        ),
    )


def champion_windows(
    engine: Engine, settings: Settings, tenant_id: str, label: str, *, now: datetime
) -> tuple[Moments, Moments]:
    """The champion's per-unit engagement in its trailing baseline and in the recent window."""
    window = timedelta(hours=settings.triggers.drift_window_hours)
    split = now - window
    start = split - timedelta(days=settings.triggers.drift_baseline_days)
    baseline = engagement_moments(engine, tenant_id, [label], start=start, end=split)[label]
    recent = engagement_moments(engine, tenant_id, [label], start=split, end=now)[label]
    return baseline, recent
