"""Safety checks before a deployment: the evaluation, the baseline, the model's reachability.

Each check returns a ``SafetyCheck`` (stored with the deployment, for audit); the manager
refuses the deployment if any failed. The evaluation is re-read from the stored experiment
rather than trusted from the caller.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine

from tuneloop.domain.experiments import ArmSpec
from tuneloop.errors import TuneloopError
from tuneloop.experiments.service import analyze_experiment, get_experiment
from tuneloop.store.deployments import rolled_back_deployment
from tuneloop.store.models_registry import champion_of, get_model_version
from tuneloop.store.pipeline_models import ModelVersion

if TYPE_CHECKING:
    from tuneloop.tracking import Tracker


@dataclass(frozen=True)
class EvaluationResult:
    """The documented ``evaluation_result`` of ``POST /deployment/deploy``."""

    ab_test_id: str
    recommendation: str = "promote"
    safety_checks_passed: bool = True


@dataclass(frozen=True)
class SafetyCheck:
    name: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ModelProbe(Protocol):
    """Proves a model can serve: raises a ``TuneloopError`` saying why not, else a detail."""

    def probe(self, tenant_id: str, model_id: str, version: str) -> str: ...


class ArtifactProbe:
    """A registered version is reachable when its adapter downloads and its config parses."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def probe(self, tenant_id: str, model_id: str, version: str) -> str:
        info = self.tracker.get_version(tenant_id, int(version))
        if info.name != model_id:
            raise TuneloopError(
                f"MLflow holds version {version} as {info.name!r}, not {model_id!r}"
            )
        with tempfile.TemporaryDirectory(prefix="tuneloop-probe-") as folder:
            local = self.tracker.download_adapter(tenant_id, int(version), Path(folder))
            files = [path for path in local.rglob("*") if path.is_file()]
            if not files:
                raise TuneloopError(f"the adapter of version {version} has no files")
            config = local / "adapter_config.json"
            if config.exists():
                json.loads(config.read_text(encoding="utf-8"))
        return f"adapter of {model_id} v{version} loaded ({len(files)} files)"


def check_evaluation(
    engine: Engine, tenant_id: str, evaluation: EvaluationResult, *, model: ModelVersion
) -> SafetyCheck:
    """The A/B test recommends this very model, significantly, against today's champion."""
    name = "evaluation"
    if evaluation.recommendation != "promote" or not evaluation.safety_checks_passed:
        return SafetyCheck(name, False, "the evaluation result does not recommend promotion")
    lost = rolled_back_deployment(engine, tenant_id, model.model_id, model.version)
    if lost is not None:
        return SafetyCheck(
            name,
            False,
            f"{model.model_id}@{model.version} was rolled back by {lost.id} "
            f"({lost.reason or 'its guardrails failed'}); a new A/B test must recommend it",
        )
    try:
        experiment = get_experiment(engine, tenant_id, evaluation.ab_test_id)
        report = analyze_experiment(engine, tenant_id, evaluation.ab_test_id)
    except TuneloopError as exc:
        return SafetyCheck(name, False, str(exc))
    arm = next(ArmSpec.from_json(a) for a in experiment.arms if a["name"] == report.headline)
    decision = report.decisions[report.headline]
    champion = champion_of(engine, tenant_id)
    problems = []
    if (arm.model_id, arm.version) != (model.model_id, model.version):
        problems.append(f"{evaluation.ab_test_id} recommends {arm.model_id}@{arm.version}")
    if report.recommendation != "promote":
        problems.append(f"{evaluation.ab_test_id} now says {report.recommendation}")
    if not decision.is_significant:
        problems.append("its engagement result is not significant")
    baseline = (experiment.baseline_model_id, experiment.baseline_version)
    if champion is None or baseline != (champion.model_id, champion.version):
        problems.append(f"it tested against {baseline[0]}@{baseline[1]}, not today's champion")
    if problems:
        return SafetyCheck(name, False, "; ".join(problems))
    # a Bayesian experiment has no p-value: its chance to win and risk made it significant
    shown = "Bayesian" if decision.p_value is None else f"p={decision.p_value:.3g}"
    return SafetyCheck(name, True, f"{evaluation.ab_test_id}: promote, significant ({shown})")


def check_baseline(
    engine: Engine, tenant_id: str, tracker: Tracker
) -> tuple[SafetyCheck, ModelVersion | None]:
    """A champion to roll back to, the same in our records and in MLflow's alias."""
    champion = champion_of(engine, tenant_id)
    if champion is None:
        detail = "no champion to roll back to (promote a first champion before any rollout)"
        return SafetyCheck("baseline", False, detail), None
    try:
        alias = tracker.get_alias(tenant_id, "champion")
    except TuneloopError as exc:
        return SafetyCheck("baseline", False, f"MLflow: {exc}"), champion
    if alias is None or str(alias.version) != champion.version:
        found = "none" if alias is None else f"v{alias.version}"
        detail = f"MLflow's champion alias is {found}, our champion v{champion.version}"
        return SafetyCheck("baseline", False, detail), champion
    detail = f"rollback target {champion.model_id}@{champion.version} recorded"
    return SafetyCheck("baseline", True, detail), champion


def check_reachable(
    engine: Engine, tenant_id: str, model_id: str, version: str, probe: ModelProbe
) -> tuple[SafetyCheck, ModelVersion | None]:
    try:
        model = get_model_version(engine, tenant_id, model_id, version)
        return SafetyCheck("reachable", True, probe.probe(tenant_id, model_id, version)), model
    except (TuneloopError, OSError, ValueError) as exc:
        return SafetyCheck("reachable", False, f"{model_id}@{version}: {exc}"), None
