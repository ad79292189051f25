"""Which model serves a unit: deterministic, sticky, and saying where the answer came from.

Precedence (docs/decisions/0008-rollout.md), first match wins:

0. **the permanent holdout** (``experiments.holdout_share`` > 0; decision 0021): its units
   get the reference model (the tenant's first champion, or ``experiments.holdout_model``)
   whatever else runs, so their engagement against everyone else's measures the effect of
   all promotions together. Experiments and rollouts see only the other units.
1. **a running experiment** owns every unit: the unit gets its arm's model (hash of
   experiment key and unit id, ``experiments.assignment``). An experiment's arms must stay
   comparable, so a rollout never takes units from it; deploying closes the experiment
   that recommended the model, and a rollout holds (no data) while another one runs.
   With several running experiments, the one started first.
2. **an active deployment**: the unit gets the new model when its bucket for the
   deployment id is below the current traffic share, else the previous model. Buckets are
   fixed per unit, so raising the share only moves units from previous to new, and a
   rollback (share 0) sends everyone back to the previous model.
3. **the champion**.

Rollout traffic is recorded as outcome events without an experiment key, with
``model_id`` set to the ``model`` label returned here (``MODEL@VERSION``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine

from tuneloop.domain.experiments import ArmSpec
from tuneloop.errors import NotFoundError
from tuneloop.experiments.assignment import Assigner, bucket
from tuneloop.experiments.holdout import HOLDOUT, in_holdout
from tuneloop.rollout.checks import model_label
from tuneloop.store.deployments import active_deployment
from tuneloop.store.experiments import list_experiments
from tuneloop.store.models_registry import champion_of, holdout_reference

Source = Literal[  # pinned: asked for by name
    "holdout", "experiment", "deployment", "champion", "pinned", "fallback"
]


@dataclass(frozen=True)
class Route:
    model: str  # the label clients echo in events' model_id: MODEL@VERSION
    model_id: str
    version: str
    source: Source
    experiment_key: str | None = None
    deployment_id: str | None = None
    arm: str | None = None  # the experiment's arm, or "new" / "previous" in a rollout


def _route(model_id: str, version: str, source: Source, **where: str | None) -> Route:
    return Route(model_label(model_id, version), model_id, version, source, **where)


@dataclass(frozen=True)
class HoldoutPolicy:
    """``experiments.holdout_share`` and ``holdout_model`` (MODEL@VERSION, or None: the
    tenant's first champion)."""

    share: float = 0.0
    model: str | None = None

    @classmethod
    def from_settings(cls, share: float, model: str | None) -> HoldoutPolicy | None:
        return cls(share, model) if share > 0 else None


@dataclass(frozen=True)
class _Holdout:
    tenant_id: str
    share: float
    reference: tuple[str, str]


@dataclass(frozen=True)
class _Rollout:
    deployment_id: str
    new: tuple[str, str]
    previous: tuple[str, str]
    traffic: float


class RoutingTable:
    """A snapshot of one tenant's routing state; ``route`` is pure and cheap per unit."""

    def __init__(
        self,
        *,
        experiment: tuple[str, list[ArmSpec]] | None,
        rollout: _Rollout | None,
        champion: tuple[str, str] | None,
        holdout: _Holdout | None = None,
    ) -> None:
        self._holdout = holdout
        self._holdout_route = (
            _route(*holdout.reference, "holdout", arm=HOLDOUT) if holdout is not None else None
        )
        self._experiment = experiment
        self._assigner = (
            Assigner(experiment[0], [(a.name, a.weight) for a in experiment[1]])
            if experiment
            else None
        )
        self._rollout = rollout
        self._champion = champion
        # Routes are immutable: made once per table, handed out per unit.
        self._arm_routes = (
            {
                a.name: _route(
                    a.model_id, a.version, "experiment", experiment_key=experiment[0], arm=a.name
                )
                for a in experiment[1]
            }
            if experiment
            else {}
        )
        self._sides = (
            {
                side: _route(*model, "deployment", deployment_id=rollout.deployment_id, arm=side)
                for side, model in (("new", rollout.new), ("previous", rollout.previous))
            }
            if rollout
            else {}
        )
        self._champion_route = _route(*champion, "champion") if champion else None

    def models(self) -> list[tuple[str, str]]:
        """Every ``(model_id, version)`` this table can hand out (what serving keeps warm)."""
        found: list[tuple[str, str]] = []
        if self._holdout is not None:
            found.append(self._holdout.reference)
        if self._experiment is not None:
            found += [(a.model_id, a.version) for a in self._experiment[1]]
        if self._rollout is not None:
            found += [self._rollout.new, self._rollout.previous]
        if self._champion is not None:
            found.append(self._champion)
        return list(dict.fromkeys(found))

    def route(self, unit_id: str) -> Route:
        h, held = self._holdout, self._holdout_route
        if h is not None and held is not None and in_holdout(h.tenant_id, unit_id, h.share):
            return held
        if self._assigner is not None:
            return self._arm_routes[self._assigner.assign(unit_id)]
        if self._rollout is not None:
            r = self._rollout
            return self._sides[
                "new" if bucket(r.deployment_id, unit_id) < r.traffic else "previous"
            ]
        if self._champion_route is not None:
            return self._champion_route
        raise NotFoundError("no experiment, deployment or champion to route to")


def routing_table(
    engine: Engine, tenant_id: str, *, holdout: HoldoutPolicy | None = None
) -> RoutingTable:
    """Read the tenant's running experiment, active deployment and champion (three queries;
    a fourth for the holdout's reference when there is a holdout)."""
    running = list_experiments(engine, tenant_id, status="running", limit=1000)
    first = min(running, key=lambda e: (e.started_at or e.created_at, e.key), default=None)
    experiment = (first.key, [ArmSpec.from_json(a) for a in first.arms]) if first else None
    found = active_deployment(engine, tenant_id)
    rollout = (
        _Rollout(
            found.id,
            (found.model_id, found.version),
            (found.previous_model_id, found.previous_version),
            found.traffic,
        )
        if found is not None
        else None
    )
    champion = champion_of(engine, tenant_id)
    return RoutingTable(
        experiment=experiment,
        rollout=rollout,
        champion=(champion.model_id, champion.version) if champion else None,
        holdout=_holdout(engine, tenant_id, holdout),
    )


def _holdout(engine: Engine, tenant_id: str, policy: HoldoutPolicy | None) -> _Holdout | None:
    """No holdout without a share, or before the tenant has a reference to serve it."""
    if policy is None or policy.share <= 0:
        return None
    if policy.model is not None:
        model_id, _, version = policy.model.rpartition("@")
        reference: tuple[str, str] | None = (model_id, version)
    else:
        reference = holdout_reference(engine, tenant_id)
    return _Holdout(tenant_id, policy.share, reference) if reference is not None else None


def route(
    engine: Engine, tenant_id: str, unit_id: str, *, holdout: HoldoutPolicy | None = None
) -> Route:
    """The model for one unit of one tenant (reads the current state; see ``routing_table``)."""
    return routing_table(engine, tenant_id, holdout=holdout).route(unit_id)
