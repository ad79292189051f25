"""DeploymentManager: deploy a version with safety checks, tick rollouts, promote, roll back.

Every transition is one compare-and-set on ``deployments.row_version`` that writes the new
state and its audit entry together, so ticks are idempotent and safe from several
processes: a tick whose view went stale writes nothing. The MLflow ``champion`` alias is
flipped *after* the transition commits (``promoting`` / ``rolling_back``: routing already
serves the right model) and the tick retries the flip until it succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from tuneloop.config import RolloutSettings
from tuneloop.errors import ConflictError, InvalidInputError, InvalidStateError
from tuneloop.experiments.ownership import check_no_other_test
from tuneloop.experiments.service import ModelRef, get_experiment, record_decision
from tuneloop.observability.metrics import ROLLOUT_STALLED
from tuneloop.rollout import checks
from tuneloop.rollout.policy import (
    Action,
    Guardrails,
    RolloutConfig,
    RolloutState,
    Stall,
    Status,
    Strategy,
    decide,
    promotable,
)
from tuneloop.rollout.safety import (
    ArtifactProbe,
    EvaluationResult,
    ModelProbe,
    check_baseline,
    check_evaluation,
    check_reachable,
)
from tuneloop.store import deployments as repo
from tuneloop.store.deployment_models import Deployment, DeploymentEvent
from tuneloop.store.models_registry import get_model_version, set_champion, set_version_status
from tuneloop.store.types import utcnow

if TYPE_CHECKING:
    from tuneloop.tracking import Tracker

# Routing reads the deployment on every call, so traffic is back on the next request; the
# minute leaves room for a router that caches its table (item 8 of the rollout issue).
ROLLBACK_TIME_SECONDS = 60
HEALTH_ENDPOINTS = ["/health", "/health/ready"]


@dataclass(frozen=True)
class TickOutcome:
    tenant_id: str
    deployment_id: str
    action: str  # advance / hold / rollback / complete / finalized / superseded / none
    status: str
    traffic: float
    reasons: tuple[str, ...] = ()
    checks: list[dict[str, Any]] = field(default_factory=list)


class DeploymentManager:
    def __init__(
        self,
        engine: Engine,
        *,
        tracker: Tracker,
        settings: RolloutSettings | None = None,
        probe: ModelProbe | None = None,
    ) -> None:
        self.engine = engine
        self.tracker = tracker
        self.settings = settings or RolloutSettings()
        self.probe = probe or ArtifactProbe(tracker)

    # --- deploy --------------------------------------------------------------------------

    def deploy(
        self,
        tenant_id: str,
        *,
        model: ModelRef,
        evaluation: EvaluationResult,
        strategy: Strategy | str | None = None,
        rollout_config: RolloutConfig | None = None,
        guardrails: Guardrails | None = None,
        actor: str = "api",
        now: datetime | None = None,
    ) -> Deployment:
        """Run the safety checks, then start the rollout (``immediate``: promote at once)."""
        now = now or utcnow()
        chosen = _strategy(strategy or self.settings.strategy)
        config = rollout_config or self.default_config()
        limits = guardrails or self.default_guardrails()
        if repo.active_deployment(self.engine, tenant_id) is not None:
            raise ConflictError(f"tenant {tenant_id!r} already has an active deployment")
        get_model_version(self.engine, tenant_id, model.model_id, model.version)  # 404
        check_no_other_test(self.engine, tenant_id, evaluation.ab_test_id)
        reach, version = check_reachable(
            self.engine, tenant_id, model.model_id, model.version, self.probe
        )
        baseline_check, baseline = check_baseline(self.engine, tenant_id, self.tracker)
        found = [reach, baseline_check]
        if version is not None:
            found.append(check_evaluation(self.engine, tenant_id, evaluation, model=version))
        failed = [check for check in found if not check.passed]
        if failed or baseline is None:
            details = "; ".join(f"{check.name}: {check.detail}" for check in failed)
            raise InvalidStateError(f"deployment refused by its safety checks: {details}")
        traffic = 1.0 if chosen is Strategy.IMMEDIATE else config.initial_traffic
        row = Deployment(
            tenant_id=tenant_id,
            model_id=model.model_id,
            version=model.version,
            previous_model_id=baseline.model_id,
            previous_version=baseline.version,
            ab_test_id=evaluation.ab_test_id,
            strategy=str(chosen),
            status=Status.PROMOTING if chosen is Strategy.IMMEDIATE else Status.ROLLING_OUT,
            traffic=traffic,
            step=1,
            rollout_config=config.to_json(),
            guardrails=limits.to_json(),
            rollback_plan=_rollback_plan(baseline.model_id, baseline.version, limits),
            safety_checks=[check.to_json() for check in found],
            row_version=1,
            created_at=now,
            step_started_at=now,
        )
        row = self._insert(row, actor=actor, now=now)
        self._close_experiment(tenant_id, evaluation.ab_test_id, row.id, now=now)
        if row.status == Status.PROMOTING:
            row = self._finish_promotion(row, actor=actor, now=now) or row
        return row

    @property
    def stall(self) -> Stall:
        hours = self.settings.stall_timeout_hours
        after = None if hours is None else timedelta(hours=hours)
        return Stall(after=after, action=self.settings.stall_action)

    def default_config(self) -> RolloutConfig:
        s = self.settings
        return RolloutConfig(
            s.initial_traffic, s.increment_interval_hours, s.increment_percentage, s.max_traffic
        )

    def default_guardrails(self) -> Guardrails:
        s = self.settings
        return Guardrails(s.max_engagement_drop, s.max_error_rate, s.max_p95_latency_ms)

    def _insert(self, row: Deployment, *, actor: str, now: datetime) -> Deployment:
        for _attempt in range(5):  # a generated id can race with a concurrent deploy
            row.id = repo.next_deployment_id(self.engine, row.tenant_id, now.date())
            event = DeploymentEvent(
                tenant_id=row.tenant_id,
                deployment_id=row.id,
                seq=1,
                kind="deployed",
                from_traffic=0.0,
                to_traffic=row.traffic,
                reasons=[f"{row.strategy} of {row.model_id}@{row.version}"],
                details={"safety_checks": row.safety_checks},
                actor=actor,
                at=now,
            )
            try:
                return repo.add_deployment(self.engine, row, event)
            except ConflictError:
                if repo.active_deployment(self.engine, row.tenant_id) is not None:
                    raise
        raise ConflictError("could not find a free deployment id; try again")

    def _close_experiment(
        self, tenant_id: str, key: str, deployment_id: str, *, now: datetime
    ) -> None:
        """A still-running experiment would keep its units (routing precedence): close it."""
        if get_experiment(self.engine, tenant_id, key).status in ("running", "stopped"):
            reason = f"promoted: rolled out by {deployment_id}"
            record_decision(
                self.engine, tenant_id, key, recommendation="promote", reasons=[reason], now=now
            )

    # --- ticks ---------------------------------------------------------------------------

    def tick(
        self, tenant_id: str | None = None, *, actor: str = "tick", now: datetime | None = None
    ) -> list[TickOutcome]:
        """One tick of every active deployment (of one tenant, or of all)."""
        now = now or utcnow()
        targets = repo.active_deployment_ids(self.engine)
        if tenant_id is not None:
            targets = [target for target in targets if target[0] == tenant_id]
        return [self.tick_one(t, d, actor=actor, now=now) for t, d in targets]

    def tick_one(
        self,
        tenant_id: str,
        deployment_id: str,
        *,
        actor: str = "tick",
        now: datetime | None = None,
    ) -> TickOutcome:
        now = now or utcnow()
        row = repo.get_deployment(self.engine, tenant_id, deployment_id)
        if row.status in (Status.PROMOTING, Status.ROLLING_BACK):
            done = self._finish(row, actor=actor, now=now)
            return _outcome(done or row, "finalized" if done else "superseded")
        if row.status != Status.ROLLING_OUT:
            return _outcome(row, "none")
        results = checks.evaluate(
            checks.gather(self.engine, row, now=now), Guardrails.from_json(row.guardrails)
        )
        decision = decide(_state(row), results, now=now, stall=self.stall)
        stalled = decision.stalled and decision.action is Action.HOLD  # a rollback ends it
        ROLLOUT_STALLED.labels(tenant_id, deployment_id).set(1 if stalled else 0)
        found = [result.to_json() for result in results]
        values: dict[str, Any] = {
            "last_checks": found,
            "last_reasons": list(decision.reasons),
            "last_tick_at": now,
        }
        event = None
        if decision.action is not Action.HOLD or row.last_reasons != list(decision.reasons):
            event = _event(
                row, str(decision.action), decision.traffic, decision.reasons, now, actor
            )
            event["details"] = {"checks": found, "triggers": list(decision.triggers)}
        values |= _transition(row, decision.action, decision.traffic, decision.reasons, now)
        updated = repo.compare_and_set(self.engine, row, values, event=event)
        if updated is None:
            return _outcome(
                repo.get_deployment(self.engine, tenant_id, deployment_id), "superseded"
            )
        if updated.status in (Status.PROMOTING, Status.ROLLING_BACK):
            updated = self._finish(updated, actor=actor, now=now) or updated
        return _outcome(updated, str(decision.action), decision.reasons, found)

    # --- by hand -------------------------------------------------------------------------

    def promote(
        self,
        tenant_id: str,
        deployment_id: str,
        *,
        force: bool = False,
        actor: str = "cli",
        now: datetime | None = None,
    ) -> Deployment:
        """Take a canary (or a rollout held at ``max_traffic``) to 100% and champion."""
        now = now or utcnow()
        row = repo.get_deployment(self.engine, tenant_id, deployment_id)
        if row.status != Status.ROLLING_OUT:
            raise InvalidStateError(
                f"deployment {deployment_id!r} is {row.status}, not rolling out"
            )
        results = checks.evaluate(
            checks.gather(self.engine, row, now=now), Guardrails.from_json(row.guardrails)
        )
        waiting = promotable(results)
        if waiting and not force:
            raise InvalidStateError("cannot promote yet: " + "; ".join(waiting))
        reasons = ("promoted by hand" + (" (forced)" if force else ""),)
        return self._manual(row, Action.COMPLETE, reasons, actor=actor, now=now)

    def rollback(
        self,
        tenant_id: str,
        deployment_id: str,
        *,
        reason: str = "rolled back by hand",
        actor: str = "cli",
        now: datetime | None = None,
    ) -> Deployment:
        """Traffic back to the previous model now; a completed one also gives back champion."""
        now = now or utcnow()
        row = repo.get_deployment(self.engine, tenant_id, deployment_id)
        if row.status in (Status.ROLLING_BACK, Status.ROLLED_BACK):
            return self._finish(row, actor=actor, now=now) or row
        if row.status == Status.COMPLETED:
            newer = repo.list_deployments(self.engine, tenant_id, limit=1)
            if newer and newer[0].id != row.id:
                raise InvalidStateError(f"{newer[0].id} came after {deployment_id}; roll that back")
        return self._manual(row, Action.ROLLBACK, (reason,), actor=actor, now=now)

    def _manual(
        self,
        row: Deployment,
        action: Action,
        reasons: tuple[str, ...],
        *,
        actor: str,
        now: datetime,
    ) -> Deployment:
        traffic = 1.0 if action is Action.COMPLETE else 0.0
        values = _transition(row, action, traffic, reasons, now)
        event = _event(row, str(action), traffic, reasons, now, actor)
        updated = repo.compare_and_set(self.engine, row, values, event=event)
        if updated is None:
            raise ConflictError(f"deployment {row.id!r} changed meanwhile; look again and retry")
        return self._finish(updated, actor=actor, now=now) or updated

    # --- the MLflow half of promoting and rolling back -------------------------------------

    def _finish(self, row: Deployment, *, actor: str, now: datetime) -> Deployment | None:
        if row.status == Status.PROMOTING:
            return self._finish_promotion(row, actor=actor, now=now)
        if row.status == Status.ROLLING_BACK:
            return self._finish_rollback(row, actor=actor, now=now)
        return row

    def _finish_promotion(self, row: Deployment, *, actor: str, now: datetime) -> Deployment | None:
        self.tracker.promote(row.tenant_id, int(row.version))
        set_champion(self.engine, row.tenant_id, row.model_id, row.version)
        self.tracker.clear_alias(row.tenant_id, "challenger", int(row.version))  # decided
        reasons = (f"champion is {row.model_id}@{row.version}",)
        values = {"status": Status.COMPLETED, "finished_at": now}
        event = _event(row, "completed", 1.0, reasons, now, actor)
        return repo.compare_and_set(self.engine, row, values, event=event)

    def _finish_rollback(self, row: Deployment, *, actor: str, now: datetime) -> Deployment | None:
        alias = self.tracker.get_alias(row.tenant_id, "champion")
        if alias is None or str(alias.version) != row.previous_version:
            self.tracker.promote(row.tenant_id, int(row.previous_version))
        set_champion(self.engine, row.tenant_id, row.previous_model_id, row.previous_version)
        # The version lost: no longer a challenger anywhere (MLflow alias, our registry).
        self.tracker.clear_alias(row.tenant_id, "challenger", int(row.version))
        set_version_status(self.engine, row.tenant_id, row.model_id, row.version, "rolled_back")
        if row.status == Status.ROLLED_BACK:
            return row
        reasons = (f"champion is {row.previous_model_id}@{row.previous_version} again",)
        values = {"status": Status.ROLLED_BACK, "finished_at": now}
        event = _event(row, "rolled_back", 0.0, reasons, now, actor)
        return repo.compare_and_set(self.engine, row, values, event=event)


def _strategy(value: Strategy | str) -> Strategy:
    try:
        return Strategy(value)
    except ValueError:
        allowed = ", ".join(s.value for s in Strategy)
        raise InvalidInputError(
            f"unknown deployment strategy {value!r} (one of {allowed})"
        ) from None


def _state(row: Deployment) -> RolloutState:
    return RolloutState(
        strategy=Strategy(row.strategy),
        traffic=row.traffic,
        step=row.step,
        step_started_at=row.step_started_at,
        config=RolloutConfig.from_json(row.rollout_config),
    )


def _transition(
    row: Deployment, action: Action, traffic: float, reasons: tuple[str, ...], now: datetime
) -> dict[str, Any]:
    if action is Action.ADVANCE:
        return {"traffic": traffic, "step": row.step + 1, "step_started_at": now}
    if action is Action.COMPLETE:
        return {
            "traffic": 1.0,
            "step": row.step + 1,
            "step_started_at": now,
            "status": Status.PROMOTING,
        }
    if action is Action.ROLLBACK:
        return {"traffic": 0.0, "status": Status.ROLLING_BACK, "reason": "; ".join(reasons)}
    return {}


def _event(
    row: Deployment, kind: str, traffic: float, reasons: tuple[str, ...], now: datetime, actor: str
) -> dict[str, Any]:
    return {
        "kind": kind,
        "from_traffic": row.traffic,
        "to_traffic": traffic,
        "reasons": list(reasons),
        "details": None,
        "actor": actor,
        "at": now,
    }


def _outcome(
    row: Deployment,
    action: str,
    reasons: tuple[str, ...] = (),
    found: list[dict[str, Any]] | None = None,
) -> TickOutcome:
    return TickOutcome(
        row.tenant_id,
        row.id,
        action,
        row.status,
        row.traffic,
        reasons or tuple(row.last_reasons or ()),
        found or [],
    )


def _rollback_plan(model_id: str, version: str, limits: Guardrails) -> dict[str, Any]:
    return {
        "previous_model": {"model_id": model_id, "version": version},
        "rollback_time_seconds": ROLLBACK_TIME_SECONDS,
        "health_check_endpoints": HEALTH_ENDPOINTS,
        "triggers": limits.trigger_names(),
    }
