"""The public analysis API: an ``AnalysisRequest`` (JSON) in, an ``AnalysisResult`` (JSON) out.

The first arm is the control; every other arm is compared with it. Field names are a
compatibility promise (docs/statistics.md lists them): ``comparisons[].arm, estimate,
std_error, ci, p_value, error`` and ``srm.p_value`` stay as they are; fields may be added.
Infinite interval ends (one-sided tests) are written as ``null``, since JSON has no inf.
The request's shape and validation live in ``request.py``.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, Field

from tuneloop.experiments.stats.bayesian import Prior, bayesian_test
from tuneloop.experiments.stats.corrections import Correction, adjust
from tuneloop.experiments.stats.cuped import CupedMoments, cuped_moments
from tuneloop.experiments.stats.cuped_ratio import ratio_cuped_moments
from tuneloop.experiments.stats.effect_size import standardized_effect
from tuneloop.experiments.stats.errors import StatsError
from tuneloop.experiments.stats.frequentist import (
    Alternative,
    Difference,
    Inference,
    effect_moments,
    t_inference,
    welch_dof,
)
from tuneloop.experiments.stats.moments import ArmStats, mean_stats, proportion_stats
from tuneloop.experiments.stats.power import Method
from tuneloop.experiments.stats.ratio import ratio_stats
from tuneloop.experiments.stats.request import (
    AnalysisRequest,
    ArmIn,
    Engine,
    Metric,
    PriorIn,
    parse_request,
)
from tuneloop.experiments.stats.sequential import sequential_inference
from tuneloop.experiments.stats.srm import srm_check

__all__ = ["AnalysisRequest", "AnalysisResult", "ArmIn", "Comparison", "analyze", "parse_request"]


class ArmSummary(BaseModel):
    name: str
    n: int
    mean: float
    variance: float


class CupedReport(BaseModel):
    theta: float
    variance_reduction: float = Field(description="1 - adjusted / unadjusted estimate variance.")
    error: str | None = None


class Comparison(BaseModel):
    """One treatment arm against the control. Numbers are None when ``error`` is set."""

    arm: str
    estimate: float | None
    std_error: float | None
    ci: tuple[float | None, float | None] | None
    p_value: float | None
    error: str | None
    significant: bool
    n: int
    mean: float
    control_mean: float
    standardized_effect: float | None = Field(description="Cohen's h (proportion) or d (mean).")
    adjusted_p_value: float | None = None
    chance_to_win: float | None = None
    risk_control: float | None = None
    risk_treatment: float | None = None
    cuped: CupedReport | None = None


class SrmReport(BaseModel):
    p_value: float | None
    passed: bool
    threshold: float
    chi_square: float | None
    expected: list[float]
    error: str | None


class AnalysisResult(BaseModel):
    metric: Metric
    difference: Difference
    alternative: Alternative
    method: Method
    alpha: float
    control: ArmSummary
    comparisons: list[Comparison]
    srm: SrmReport
    engine: Engine = "frequentist"
    correction: Correction = "none"
    inverse: bool = False
    prior: PriorIn | None = None


def analyze(request: AnalysisRequest) -> AnalysisResult:
    """Compare every arm with the first, correct the family's p-values, check the split."""
    arms = [_arm_stats(arm, request.metric) for arm in request.arms]
    control = arms[0]
    srm = srm_check(
        [arm.n for arm in request.arms], request.planned_weights(), threshold=request.srm_threshold
    )
    comparisons = [_compare(request, 0, i, arms) for i in range(1, len(arms))]
    adjusted = adjust([c.p_value for c in comparisons], request.correction)
    for comparison, p_value in zip(comparisons, adjusted, strict=True):
        comparison.adjusted_p_value = p_value
        if p_value is not None:  # as GrowthBook: significance reads the adjusted p-value
            comparison.significant = p_value <= request.alpha
    control_stats = control if isinstance(control, ArmStats) else _empty(request.arms[0].n)
    return AnalysisResult(
        metric=request.metric,
        difference=request.difference,
        alternative=request.alternative,
        method=request.method,
        alpha=request.alpha,
        engine=request.engine,
        correction=request.correction,
        inverse=request.inverse,
        prior=request.prior if request.engine == "bayesian" else None,
        control=ArmSummary(
            name=request.arms[0].name,
            n=control_stats.n,
            mean=control_stats.mean,
            variance=control_stats.variance,
        ),
        comparisons=comparisons,
        srm=SrmReport(
            p_value=srm.p_value,
            passed=srm.passed,
            threshold=srm.threshold,
            chi_square=srm.chi_square,
            expected=list(srm.expected),
            error=srm.error,
        ),
    )


def _empty(n: int) -> ArmStats:
    return ArmStats(n=n, mean=0.0, variance=0.0)


def _arm_stats(arm: ArmIn, metric: Metric) -> ArmStats | StatsError:
    if metric == "proportion":
        return proportion_stats(arm.n, arm.successes or 0.0)
    if metric == "ratio":
        return ratio_stats(
            arm.n,
            numerator_sum=arm.numerator_sum or 0.0,
            numerator_sum_squares=arm.numerator_sum_squares or 0.0,
            denominator_sum=arm.denominator_sum or 0.0,
            denominator_sum_squares=arm.denominator_sum_squares or 0.0,
            numerator_denominator_sum_products=arm.numerator_denominator_sum_products or 0.0,
        )
    return mean_stats(arm.n, arm.sum or 0.0, arm.sum_squares or 0.0)


_Effect = tuple[float, float, float, CupedReport | None]  # estimate, std error, dof, cuped


def _effect(
    request: AnalysisRequest, control: ArmStats, arm: ArmStats, a: int, b: int
) -> _Effect | StatsError:
    relative = request.difference == "relative"
    if request.cuped():
        moments: CupedMoments | StatsError
        if request.metric == "ratio":
            moments = ratio_cuped_moments(
                request.arms[a].ratio_cuped_arm(),
                request.arms[b].ratio_cuped_arm(),
                relative=relative,
            )
        else:
            moments = cuped_moments(
                request.arms[a].cuped_arm(), request.arms[b].cuped_arm(), relative=relative
            )
        if isinstance(moments, StatsError):
            return moments
        report = CupedReport(
            theta=moments.theta,
            variance_reduction=moments.variance_reduction,
            error=moments.error,
        )
        return moments.estimate, moments.std_error, moments.dof, report
    plain = effect_moments(control, arm, relative=relative)
    if isinstance(plain, StatsError):
        return plain
    with np.errstate(all="ignore"):  # absurd sums: inf / NaN, reported as NOT_FINITE
        with_dof = float(welch_dof(control.variance, control.n, arm.variance, arm.n))
    return plain[0], plain[1], with_dof, None


def _compare(
    request: AnalysisRequest, a: int, b: int, arms: list[ArmStats | StatsError]
) -> Comparison:
    name, n = request.arms[b].name, request.arms[b].n
    control, arm = arms[a], arms[b]
    if not isinstance(control, ArmStats) or not isinstance(arm, ArmStats):
        error = control if isinstance(control, StatsError) else arm
        assert isinstance(error, StatsError)
        return _failed(name, n, error, arm, control)
    effect = _effect(request, control, arm, a, b)
    if isinstance(effect, StatsError):
        return _failed(name, n, effect, arm, control)
    estimate, std_error, dof, cuped = effect
    effect_size = standardized_effect(control, arm, proportion=request.metric == "proportion")
    common = {
        "arm": name,
        "n": arm.n,
        "mean": arm.mean,
        "control_mean": control.mean,
        "standardized_effect": effect_size,
        "cuped": cuped,
    }
    if request.engine == "bayesian":
        return _bayesian(request, estimate, std_error, control.mean, common)
    inference = _frequentist(request, estimate, std_error, dof, control.n + arm.n)
    return Comparison(
        estimate=inference.estimate,
        std_error=inference.std_error,
        ci=_json_interval(inference.ci),
        p_value=inference.p_value,
        error=inference.error,
        significant=inference.significant,
        **common,
    )


def _frequentist(
    request: AnalysisRequest, estimate: float, std_error: float, dof: float, n: int
) -> Inference:
    if request.method == "fixed":
        return t_inference(
            estimate, std_error, dof, alpha=request.alpha, alternative=request.alternative
        )
    return sequential_inference(
        estimate,
        std_error,
        n,
        alpha=request.alpha,
        alternative=request.alternative,
        tuning=request.sequential_tuning,
    )


def _bayesian(
    request: AnalysisRequest,
    estimate: float,
    std_error: float,
    control_mean: float,
    common: dict[str, object],
) -> Comparison:
    prior = request.prior
    result = bayesian_test(
        estimate,
        std_error,
        control_mean=control_mean,
        relative=request.difference == "relative",
        prior=Prior(mean=prior.mean, variance=prior.variance, proper=prior.proper),
        inverse=request.inverse,
        alpha=request.alpha,
    )
    return Comparison(
        estimate=result.estimate,
        std_error=result.std_error,
        ci=result.ci,
        p_value=None,
        error=result.error,
        significant=result.significant,
        chance_to_win=result.chance_to_win,
        risk_control=result.risk_control,
        risk_treatment=result.risk_treatment,
        **common,
    )


def _failed(
    name: str, n: int, error: StatsError, arm: ArmStats | StatsError, control: ArmStats | StatsError
) -> Comparison:
    return Comparison(
        arm=name,
        estimate=None,
        std_error=None,
        ci=None,
        p_value=None,
        error=error,
        significant=False,
        n=n,
        mean=arm.mean if isinstance(arm, ArmStats) else 0.0,
        control_mean=control.mean if isinstance(control, ArmStats) else 0.0,
        standardized_effect=None,
    )


def _json_interval(ci: tuple[float, float] | None) -> tuple[float | None, float | None] | None:
    if ci is None:
        return None
    low, high = ci
    return (low if math.isfinite(low) else None, high if math.isfinite(high) else None)
