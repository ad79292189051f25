"""The public analysis API: an ``AnalysisRequest`` (JSON) in, an ``AnalysisResult`` (JSON) out.

The first arm is the control; every other arm is compared with it. Field names are a
compatibility promise (docs/statistics.md lists them): ``comparisons[].arm, estimate,
std_error, ci, p_value, error`` and ``srm.p_value`` stay as they are; fields may be added.
Infinite interval ends (one-sided tests) are written as ``null``, since JSON has no inf.
"""

from __future__ import annotations

import json
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from tuneloop.errors import InvalidInputError, Problem
from tuneloop.experiments.stats.effect_size import standardized_effect
from tuneloop.experiments.stats.frequentist import Alternative, Difference, Inference, t_test
from tuneloop.experiments.stats.moments import ArmStats, mean_stats, proportion_stats
from tuneloop.experiments.stats.power import Method
from tuneloop.experiments.stats.sequential import DEFAULT_TUNING, sequential_test
from tuneloop.experiments.stats.srm import DEFAULT_SRM_THRESHOLD, srm_check

Metric = Literal["mean", "proportion"]


class ArmIn(BaseModel):
    """One arm's sufficient statistics: ``sum``/``sum_squares`` (mean) or ``successes``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=128)
    n: int = Field(ge=0, description="Units (users, requests) in the arm.")
    sum: float | None = Field(default=None, allow_inf_nan=False)
    sum_squares: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    successes: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class AnalysisRequest(BaseModel):
    """What to compare and how; everything but ``arms`` has a default."""

    model_config = ConfigDict(extra="forbid")

    metric: Metric = "mean"
    difference: Difference = "relative"
    alternative: Alternative = "two-sided"
    method: Method = Field(
        default="sequential", description="sequential: valid at every look; fixed: read once."
    )
    alpha: float = Field(default=0.05, gt=0, lt=1)  # after method: its check reads both
    sequential_tuning: float = Field(default=DEFAULT_TUNING, gt=0, allow_inf_nan=False)
    srm_threshold: float = Field(default=DEFAULT_SRM_THRESHOLD, gt=0, lt=1)
    weights: list[float] | None = Field(default=None, description="Planned split; equal if absent.")
    arms: list[ArmIn] = Field(min_length=2, description="Control first, then each treatment.")

    @field_validator("alpha")
    @classmethod
    def _one_sided_sequential_alpha(cls, alpha: float, info: ValidationInfo) -> float:
        # rho of a one-sided confidence sequence uses 2·alpha, which must stay below 1
        sided = info.data.get("alternative", "two-sided") != "two-sided"
        if sided and info.data.get("method") == "sequential" and alpha >= 0.5:
            raise ValueError(f"a one-sided sequential test needs alpha < 0.5, got {alpha}")
        return alpha

    @field_validator("arms")
    @classmethod
    def _arms_fit_the_metric(cls, arms: list[ArmIn], info: ValidationInfo) -> list[ArmIn]:
        names = [arm.name for arm in arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be unique, got {names}")
        metric = info.data.get("metric", "mean")
        for index, arm in enumerate(arms):
            _check_arm(index, arm, metric)
        return arms

    @field_validator("weights")
    @classmethod
    def _positive_weights(cls, weights: list[float] | None) -> list[float] | None:
        if weights is not None and any(not (w > 0 and math.isfinite(w)) for w in weights):
            raise ValueError(f"every weight must be a positive number, got {weights}")
        return weights

    def planned_weights(self) -> list[float]:
        return self.weights if self.weights is not None else [1.0] * len(self.arms)


def _check_arm(index: int, arm: ArmIn, metric: Metric) -> None:
    where = f"arms[{index}] ({arm.name!r})"
    if metric == "proportion":
        if arm.successes is None:
            raise ValueError(f"{where}: a proportion arm needs 'successes'")
        if arm.sum is not None or arm.sum_squares is not None:
            raise ValueError(
                f"{where}: a proportion arm takes 'successes', not 'sum'/'sum_squares'"
            )
        if arm.successes > arm.n:
            raise ValueError(f"{where}: successes ({arm.successes:g}) cannot exceed n ({arm.n})")
    else:
        if arm.sum is None or arm.sum_squares is None:
            raise ValueError(f"{where}: a mean arm needs 'sum' and 'sum_squares'")
        if arm.successes is not None:
            raise ValueError(f"{where}: a mean arm takes 'sum'/'sum_squares', not 'successes'")


class ArmSummary(BaseModel):
    name: str
    n: int
    mean: float
    variance: float


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


def parse_request(raw: str | bytes) -> AnalysisRequest:
    """Parse JSON into a request; anything wrong becomes an InvalidInputError naming fields."""
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"the analysis request is not valid JSON: {exc}") from exc
    try:
        return AnalysisRequest.model_validate(payload)
    except ValidationError as exc:
        problems = [_problem(error["loc"], error["msg"]) for error in exc.errors()]
        raise InvalidInputError("the analysis request is invalid", problems) from exc


def _problem(loc: tuple[int | str, ...], message: str) -> Problem:
    return Problem(where=".".join(str(part) for part in loc) or "request", reason=message)


def analyze(request: AnalysisRequest) -> AnalysisResult:
    """Compare every arm with the first, and check the traffic split."""
    arms = [_arm_stats(arm, request.metric) for arm in request.arms]
    control = arms[0]
    srm = srm_check(
        [arm.n for arm in request.arms], request.planned_weights(), threshold=request.srm_threshold
    )
    return AnalysisResult(
        metric=request.metric,
        difference=request.difference,
        alternative=request.alternative,
        method=request.method,
        alpha=request.alpha,
        control=ArmSummary(
            name=request.arms[0].name, n=control.n, mean=control.mean, variance=control.variance
        ),
        comparisons=[
            _compare(request, control, arm, name=request.arms[i].name)
            for i, arm in enumerate(arms[1:], start=1)
        ],
        srm=SrmReport(
            p_value=srm.p_value,
            passed=srm.passed,
            threshold=srm.threshold,
            chi_square=srm.chi_square,
            expected=list(srm.expected),
            error=srm.error,
        ),
    )


def _arm_stats(arm: ArmIn, metric: Metric) -> ArmStats:
    if metric == "proportion":
        return proportion_stats(arm.n, arm.successes or 0.0)
    return mean_stats(arm.n, arm.sum or 0.0, arm.sum_squares or 0.0)


def _compare(
    request: AnalysisRequest, control: ArmStats, arm: ArmStats, *, name: str
) -> Comparison:
    inference = _infer(request, control, arm)
    return Comparison(
        arm=name,
        estimate=inference.estimate,
        std_error=inference.std_error,
        ci=_json_interval(inference.ci),
        p_value=inference.p_value,
        error=inference.error,
        significant=inference.significant,
        n=arm.n,
        mean=arm.mean,
        control_mean=control.mean,
        standardized_effect=standardized_effect(
            control, arm, proportion=request.metric == "proportion"
        ),
    )


def _infer(request: AnalysisRequest, control: ArmStats, arm: ArmStats) -> Inference:
    if request.method == "fixed":
        return t_test(
            control,
            arm,
            difference=request.difference,
            alpha=request.alpha,
            alternative=request.alternative,
        )
    return sequential_test(
        control,
        arm,
        difference=request.difference,
        alpha=request.alpha,
        alternative=request.alternative,
        tuning=request.sequential_tuning,
    )


def _json_interval(ci: tuple[float, float] | None) -> tuple[float | None, float | None] | None:
    if ci is None:
        return None
    low, high = ci
    return (low if math.isfinite(low) else None, high if math.isfinite(high) else None)
