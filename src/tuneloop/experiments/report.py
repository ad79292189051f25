"""An experiment's report: SQL sufficient statistics -> statistics engine -> decision policy.

Metrics (all means over units, see ``store.experiment_statistics.arm_statistics``) and how
they are read:

- ``engagement``: the primary metric, relative difference;
- ``cost_per_token``: relative difference (the policy reads the cost-efficiency gain);
- ``latency_ms``: relative difference, a guardrail (higher is worse);
- ``error_rate``: absolute difference (rates near zero), a guardrail;
- ``engagement_per_post``: a ratio metric (the units' engagement over their posts), reported.

``cost_per_token`` and ``engagement_per_post`` are ratio metrics (delta method): cost /
tokens and engagement / posts, summed per unit. ``engagement`` and ``engagement_per_post``
are CUPED-adjusted with their pre-exposure values when enough units have one
(``CUPED_MIN_SHARE``, ``CUPED_MIN_UNITS``).
The experiment's success criteria choose the engine (frequentist or Bayesian) and the
multiple-testing correction, applied across the arms of each metric.

The sample-ratio-mismatch check uses *exposed* units against the planned weights, not the
units with an outcome: a candidate that fails more often has fewer outcomes, and that is
an effect to measure, not broken assignment.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import Engine

from tuneloop.domain.experiments import (
    METRICS,
    ArmSpec,
    ArmStatistics,
    Moments,
    PrePeriod,
    RatioMoments,
    RatioPrePeriod,
    SuccessCriteria,
)
from tuneloop.experiments.decision import ArmMetrics, Decision, DecisionPolicy, Evidence, decide
from tuneloop.experiments.stats.analysis import (
    AnalysisRequest,
    AnalysisResult,
    ArmIn,
    SrmReport,
    analyze,
)
from tuneloop.experiments.stats.corrections import adjust
from tuneloop.experiments.stats.srm import srm_check
from tuneloop.store.experiment_models import Experiment
from tuneloop.store.experiment_statistics import arm_statistics

Method = Literal["sequential", "fixed"]
DIFFERENCES = {
    "engagement": "relative",
    "cost_per_token": "relative",
    "latency_ms": "relative",
    "error_rate": "absolute",
}
GUARDRAILS = {"error rate": "error_rate", "latency": "latency_ms"}
RATIOS = {"cost_per_token", "engagement_per_post"}  # analysed as ratio metrics
CUPED_METRICS = {"engagement", "engagement_per_post"}  # with a pre-period computed in SQL
CUPED_WINDOW = timedelta(days=14)  # GrowthBook's default regression-adjustment window
CUPED_MIN_SHARE = 0.1  # of the units with an engagement value, and ...
CUPED_MIN_UNITS = 20  # ... at least this many, must have a pre-period value for CUPED


@dataclass(frozen=True)
class ArmReport:
    """One arm as observed: its model, planned weight, exposed units and metric moments."""

    spec: ArmSpec
    exposed_units: int
    metrics: dict[str, Moments]
    ratios: dict[str, RatioMoments] | None = None
    pre_period: PrePeriod | None = None
    ratio_pre_period: RatioPrePeriod | None = None

    def mean(self, metric: str) -> float:
        if self.ratios and metric in self.ratios:
            return self.ratios[metric].mean or 0.0
        return self.metrics[metric].mean or 0.0


@dataclass(frozen=True)
class ExperimentReport:
    key: str
    status: str
    elapsed_hours: float
    planned_hours: float
    alpha: float
    arms: list[ArmReport]
    analyses: dict[str, AnalysisResult]
    srm: SrmReport
    decisions: dict[str, Decision]  # per non-baseline arm
    headline: str  # the candidate the recommendation is about
    recommendation: str
    reasons: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The documented ``/evaluation/metrics`` fields, then everything behind them."""
        decision = self.decisions[self.headline]
        return {
            "ab_test_id": self.key,
            "status": self.status,
            "duration_hours": round(self.elapsed_hours, 3),
            "metrics": {arm.spec.name: _documented_metrics(arm) for arm in self.arms},
            "performance_comparison": asdict(decision.performance),
            "statistical_analysis": {
                "is_significant": decision.is_significant,
                "confidence_level": 1.0 - self.alpha,
                "p_value": decision.p_value,
                "effect_size": decision.effect_size,
                **self._engagement_statistics(),
            },
            "recommendation": self.recommendation,
            "reasons": list(self.reasons),
            "candidate": self.headline,
            "planned_hours": self.planned_hours,
            "srm": self.srm.model_dump(mode="json"),
            "arms": [_arm_json(arm) for arm in self.arms],
            "analyses": {
                name: result.model_dump(mode="json") for name, result in self.analyses.items()
            },
            "decisions": {name: _decision_json(found) for name, found in self.decisions.items()},
        }

    def _engagement_statistics(self) -> dict[str, Any]:
        """The headline's engagement result beyond the documented fields (issue 14)."""
        analysis = self.analyses["engagement"]
        found = [c for c in analysis.comparisons if c.arm == self.headline]
        comparison = found[0] if found else None
        cuped = comparison.cuped if comparison else None
        return {
            "stats_engine": analysis.engine,
            "correction": analysis.correction,
            "adjusted_p_value": comparison.adjusted_p_value if comparison else None,
            "chance_to_win": comparison.chance_to_win if comparison else None,
            "risk": comparison.risk_treatment if comparison else None,
            "cuped": cuped.model_dump(mode="json") if cuped else None,
        }


def build_report(
    engine: Engine,
    experiment: Experiment,
    *,
    elapsed_hours: float,
    method: Method = "sequential",
    until: datetime | None = None,
) -> ExperimentReport:
    """Read the arms' statistics in SQL and judge every candidate against the baseline
    (on the events up to ``until`` when given: the evidence at an earlier look)."""
    criteria = SuccessCriteria.from_json(experiment.success_criteria)
    since = experiment.started_at - CUPED_WINDOW if experiment.started_at else None
    found = arm_statistics(
        engine, experiment.tenant_id, experiment.key, until=until, pre_period_since=since
    )
    arms = _arm_reports(experiment, found)
    weights = [arm.spec.weight for arm in arms]
    srm = _exposure_srm(arms, weights)
    alpha = criteria.significance_threshold
    analyses = {
        metric: _analyze(arms, metric, weights, criteria=criteria, method=method).model_copy(
            update={"srm": srm}
        )
        for metric in (*METRICS, "engagement_per_post")
    }
    _correct_guardrails(analyses, criteria)
    policy = DecisionPolicy(
        min_engagement_lift=criteria.min_engagement_lift,
        min_cost_efficiency_gain=criteria.min_cost_efficiency_gain,
        significance=alpha,
        min_chance_to_win=criteria.min_chance_to_win,
        max_risk=criteria.max_risk,
    )
    planned = float(experiment.duration_hours)
    decisions = {
        arm.spec.name: _decide(arms[0], arm, analyses, policy, elapsed_hours, planned)
        for arm in arms[1:]
    }
    headline, recommendation, reasons = _overall(decisions)
    return ExperimentReport(
        key=experiment.key,
        status=experiment.status,
        elapsed_hours=elapsed_hours,
        planned_hours=planned,
        alpha=alpha,
        arms=arms,
        analyses=analyses,
        srm=srm,
        decisions=decisions,
        headline=headline,
        recommendation=recommendation,
        reasons=reasons,
    )


def _arm_reports(experiment: Experiment, found: list[ArmStatistics]) -> list[ArmReport]:
    """Arms in the experiment's order; an arm without events yet has zero moments."""
    by_name = {stats.arm: stats for stats in found}
    empty = {metric: Moments(0, 0.0, 0.0) for metric in METRICS}
    reports = []
    for raw in experiment.arms:
        spec = ArmSpec.from_json(raw)
        stats = by_name.get(spec.name)
        reports.append(
            ArmReport(
                spec=spec,
                exposed_units=stats.exposed_units if stats else 0,
                metrics=stats.metrics if stats else empty,
                ratios=stats.ratios if stats else None,
                pre_period=stats.pre_period.get("engagement") if stats else None,
                ratio_pre_period=(
                    stats.ratio_pre_period.get("engagement_per_post") if stats else None
                ),
            )
        )
    return reports


def _exposure_srm(arms: list[ArmReport], weights: list[float]) -> SrmReport:
    result = srm_check([arm.exposed_units for arm in arms], weights)
    return SrmReport(
        p_value=result.p_value,
        passed=result.passed,
        threshold=result.threshold,
        chi_square=result.chi_square,
        expected=list(result.expected),
        error=result.error,
    )


def _analyze(
    arms: list[ArmReport],
    metric: str,
    weights: list[float],
    *,
    criteria: SuccessCriteria,
    method: Method,
) -> AnalysisResult:
    request = AnalysisRequest(
        metric="ratio" if metric in RATIOS else "mean",
        difference=cast(Any, DIFFERENCES.get(metric, "relative")),
        method=method,
        alpha=criteria.significance_threshold,
        weights=weights,
        engine=cast(Any, criteria.stats_engine),
        inverse=metric in ("cost_per_token", "latency_ms", "error_rate"),
        correction=cast(Any, criteria.correction),
        arms=[_arm_in(arm, metric) for arm in arms],
    )
    if metric in CUPED_METRICS and not _enough_pre_period(arms, metric):
        request = request.model_copy(
            update={"arms": [_arm_in(arm, metric, cuped=False) for arm in arms]}
        )
    return analyze(request)


def _arm_in(arm: ArmReport, metric: str, *, cuped: bool = True) -> ArmIn:
    if metric in RATIOS:
        ratio = (arm.ratios or {}).get(metric) or RatioMoments(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        pre = arm.ratio_pre_period if cuped and metric == "engagement_per_post" else None
        extra = asdict(pre) if pre else {}
        extra.pop("units_with_data", None)
        return ArmIn(name=arm.spec.name, **asdict(ratio), **extra)
    moments = arm.metrics[metric]
    pre_mean = arm.pre_period if cuped and metric == "engagement" else None
    return ArmIn(
        name=arm.spec.name,
        n=moments.n,
        sum=moments.sum,
        sum_squares=moments.sum_squares,
        pre_sum=pre_mean.pre_sum if pre_mean else None,
        pre_sum_squares=pre_mean.pre_sum_squares if pre_mean else None,
        post_pre_sum_products=pre_mean.post_pre_sum_products if pre_mean else None,
    )


def _enough_pre_period(arms: list[ArmReport], metric: str) -> bool:
    """CUPED pays when enough units have history; with too few, theta is noise."""
    if metric == "engagement":
        with_data = sum(a.pre_period.units_with_data for a in arms if a.pre_period)
        units = sum(a.metrics["engagement"].n for a in arms)
    else:
        with_data = sum(a.ratio_pre_period.units_with_data for a in arms if a.ratio_pre_period)
        units = sum(a.ratios[metric].n for a in arms if a.ratios and metric in a.ratios)
    return with_data >= max(CUPED_MIN_UNITS, CUPED_MIN_SHARE * units)


def _correct_guardrails(analyses: dict[str, AnalysisResult], criteria: SuccessCriteria) -> None:
    """One family over every guardrail metric of every candidate: a veto needs its p-value
    adjusted for the number of guardrails looked at (engagement stays its own family)."""
    if criteria.correction == "none" or criteria.stats_engine == "bayesian":
        return
    family = [c for metric in GUARDRAILS.values() for c in analyses[metric].comparisons]
    raw = [c.p_value for c in family]
    adjusted = adjust(raw, cast(Any, criteria.correction))
    for comparison, p_value in zip(family, adjusted, strict=True):
        comparison.adjusted_p_value = p_value
        if p_value is not None:
            comparison.significant = p_value <= criteria.significance_threshold


def _only(result: AnalysisResult, arm: str) -> AnalysisResult:
    """The analysis with just one candidate's comparison (the policy reads the first)."""
    return result.model_copy(
        update={"comparisons": [c for c in result.comparisons if c.arm == arm]}
    )


def _decide(
    baseline: ArmReport,
    arm: ArmReport,
    analyses: dict[str, AnalysisResult],
    policy: DecisionPolicy,
    elapsed_hours: float,
    planned_hours: float,
) -> Decision:
    name = arm.spec.name
    evidence = Evidence(
        baseline=_arm_metrics(baseline),
        candidate=_arm_metrics(arm),
        primary=_only(analyses["engagement"], name),
        elapsed_hours=elapsed_hours,
        planned_hours=planned_hours,
        guardrails={label: _only(analyses[metric], name) for label, metric in GUARDRAILS.items()},
    )
    return decide(evidence, policy)


def _arm_metrics(arm: ArmReport) -> ArmMetrics:
    return ArmMetrics(
        engagement_rate=arm.mean("engagement"),
        cost_per_token=arm.mean("cost_per_token"),
        latency_ms=arm.mean("latency_ms"),
        error_rate=arm.mean("error_rate"),
        sample_size=arm.exposed_units,
        cost_measured=arm.metrics["cost_per_token"].sum > 0,
    )


def _overall(decisions: dict[str, Decision]) -> tuple[str, str, tuple[str, ...]]:
    """One recommendation: the best promotable candidate, else wait, else reject."""
    if len(decisions) == 1:
        name, only = next(iter(decisions.items()))
        return name, only.recommendation, only.reasons
    promoted = {n: d for n, d in decisions.items() if d.recommendation == "promote"}
    if promoted:
        best = max(promoted, key=lambda n: promoted[n].performance.engagement_lift or 0.0)
        return best, "promote", (f"{best}: promote", *promoted[best].reasons)
    waiting = [n for n, d in decisions.items() if d.recommendation == "continue"]
    verdict = "continue" if waiting else "reject"
    headline = waiting[0] if waiting else next(iter(decisions))
    reasons = tuple(
        f"{n}: {d.recommendation}: {'; '.join(d.reasons)}" for n, d in decisions.items()
    )
    return headline, verdict, reasons


def _documented_metrics(arm: ArmReport) -> dict[str, Any]:
    return {
        "engagement_rate": arm.metrics["engagement"].mean,
        "cost_per_token": (arm.ratios or {})
        .get("cost_per_token", arm.metrics["cost_per_token"])
        .mean,
        "response_time_ms": arm.metrics["latency_ms"].mean,
        "error_rate": arm.metrics["error_rate"].mean,
        "quality_score": None,  # no quality signal is collected yet
        "sample_size": arm.exposed_units,
    }


def _arm_json(arm: ArmReport) -> dict[str, Any]:
    return {
        **arm.spec.to_json(),
        "exposed_units": arm.exposed_units,
        "metrics": {
            name: {**asdict(m), "mean": m.mean, "variance": m.variance}
            for name, m in arm.metrics.items()
        },
    }


def _decision_json(decision: Decision) -> dict[str, Any]:
    data = asdict(decision)
    data["reasons"] = list(decision.reasons)
    return data
