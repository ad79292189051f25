"""The analysis request (JSON in): arms' sufficient statistics and how to compare them.

``metric`` says which sums each arm carries: ``mean`` (``sum``, ``sum_squares``, and
optionally the CUPED pre-period sums), ``proportion`` (``successes``) or ``ratio``
(numerator and denominator sums, their squares and their products). Everything but
``arms`` has a default; a problem is reported as ``field: reason``.
"""

from __future__ import annotations

import json
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from tuneloop.errors import InvalidInputError, Problem
from tuneloop.experiments.stats.bayesian import DEFAULT_PRIOR_VARIANCE
from tuneloop.experiments.stats.corrections import Correction
from tuneloop.experiments.stats.cuped import CupedArm
from tuneloop.experiments.stats.cuped_ratio import RatioCupedArm
from tuneloop.experiments.stats.frequentist import Alternative, Difference
from tuneloop.experiments.stats.power import Method
from tuneloop.experiments.stats.sequential import DEFAULT_TUNING
from tuneloop.experiments.stats.srm import DEFAULT_SRM_THRESHOLD

Metric = Literal["mean", "proportion", "ratio"]
Engine = Literal["frequentist", "bayesian"]
RATIO_FIELDS = (
    "numerator_sum",
    "numerator_sum_squares",
    "denominator_sum",
    "denominator_sum_squares",
    "numerator_denominator_sum_products",
)
PRE_FIELDS = ("pre_sum", "pre_sum_squares", "post_pre_sum_products")
RATIO_PRE_FIELDS = (  # CUPED of a ratio metric: the pre-period's sums and cross products
    "pre_numerator_sum",
    "pre_numerator_sum_squares",
    "pre_denominator_sum",
    "pre_denominator_sum_squares",
    "numerator_pre_numerator_sum_products",
    "denominator_pre_denominator_sum_products",
    "pre_numerator_pre_denominator_sum_products",
    "numerator_pre_denominator_sum_products",
    "pre_numerator_denominator_sum_products",
)
_Number = Field(default=None, allow_inf_nan=False)
_Square = Field(default=None, ge=0, allow_inf_nan=False)


class ArmIn(BaseModel):
    """One arm's sufficient statistics, the fields its metric needs."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=128)
    n: int = Field(ge=0, description="Units (users, requests) in the arm.")
    sum: float | None = _Number
    sum_squares: float | None = _Square
    successes: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    numerator_sum: float | None = _Number
    numerator_sum_squares: float | None = _Square
    denominator_sum: float | None = _Number
    denominator_sum_squares: float | None = _Square
    numerator_denominator_sum_products: float | None = _Number
    pre_sum: float | None = _Number
    pre_sum_squares: float | None = _Square
    post_pre_sum_products: float | None = _Number
    pre_numerator_sum: float | None = _Number
    pre_numerator_sum_squares: float | None = _Square
    pre_denominator_sum: float | None = _Number
    pre_denominator_sum_squares: float | None = _Square
    numerator_pre_numerator_sum_products: float | None = _Number
    denominator_pre_denominator_sum_products: float | None = _Number
    pre_numerator_pre_denominator_sum_products: float | None = _Number
    numerator_pre_denominator_sum_products: float | None = _Number
    pre_numerator_denominator_sum_products: float | None = _Number

    def has_pre_period(self) -> bool:
        return all(getattr(self, name) is not None for name in PRE_FIELDS)

    def has_ratio_pre_period(self) -> bool:
        return all(getattr(self, name) is not None for name in RATIO_PRE_FIELDS)

    def cuped_arm(self) -> CupedArm:
        """The arm's post and pre-period sums (mean metric)."""
        return CupedArm(
            n=self.n,
            sum=self.sum or 0.0,
            sum_squares=self.sum_squares or 0.0,
            pre_sum=self.pre_sum or 0.0,
            pre_sum_squares=self.pre_sum_squares or 0.0,
            post_pre_sum_products=self.post_pre_sum_products or 0.0,
        )

    def ratio_cuped_arm(self) -> RatioCupedArm:
        """The arm's post and pre-period numerator/denominator sums (ratio metric)."""
        values = [getattr(self, name) or 0.0 for name in (*RATIO_FIELDS, *RATIO_PRE_FIELDS)]
        m, m2, d, d2, md, m0, m02, d0, d02, m_m0, d_d0, m0_d0, m_d0, m0_d = values
        return RatioCupedArm(
            self.n, m, m2, d, d2, md, m0, m02, d0, d02, m_m0, d_d0, m0_d0, m_d0, m0_d
        )


class PriorIn(BaseModel):
    """A Gaussian prior on the relative effect (Bayesian engine)."""

    model_config = ConfigDict(extra="forbid")

    mean: float = Field(default=0.0, allow_inf_nan=False)
    variance: float = Field(default=DEFAULT_PRIOR_VARIANCE, gt=0, allow_inf_nan=False)
    proper: bool = False


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
    engine: Engine = "frequentist"
    prior: PriorIn = Field(default_factory=PriorIn)
    inverse: bool = Field(default=False, description="Lower is better (Bayesian chance to win).")
    correction: Correction = "none"
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

    def cuped(self) -> bool:
        """Every arm of a mean or ratio metric has its pre-period sums: adjust."""
        if self.metric == "ratio":
            return all(arm.has_ratio_pre_period() for arm in self.arms)
        return self.metric == "mean" and all(arm.has_pre_period() for arm in self.arms)


def _given(arm: ArmIn, fields: tuple[str, ...]) -> list[str]:
    return [name for name in fields if getattr(arm, name) is not None]


def _check_arm(index: int, arm: ArmIn, metric: Metric) -> None:
    where = f"arms[{index}] ({arm.name!r})"
    mean_fields, pre = _given(arm, ("sum", "sum_squares")), _given(arm, PRE_FIELDS)
    ratio_pre = _given(arm, RATIO_PRE_FIELDS)
    ratio, success = _given(arm, RATIO_FIELDS), _given(arm, ("successes",))
    if metric == "proportion":
        if not success:
            raise ValueError(f"{where}: a proportion arm needs 'successes'")
        if mean_fields or ratio or pre or ratio_pre:
            extra = mean_fields + ratio + pre + ratio_pre
            raise ValueError(f"{where}: a proportion arm takes only 'successes', got {extra}")
        if (arm.successes or 0) > arm.n:
            raise ValueError(f"{where}: successes ({arm.successes:g}) cannot exceed n ({arm.n})")
    elif metric == "ratio":
        if len(ratio) != len(RATIO_FIELDS):
            missing = [name for name in RATIO_FIELDS if name not in ratio]
            raise ValueError(f"{where}: a ratio arm needs {missing}")
        if mean_fields or success or pre:
            raise ValueError(
                f"{where}: a ratio arm takes only the ratio sums, got {mean_fields + success + pre}"
            )
        if ratio_pre and len(ratio_pre) != len(RATIO_PRE_FIELDS):
            missing = [name for name in RATIO_PRE_FIELDS if name not in ratio_pre]
            raise ValueError(f"{where}: CUPED of a ratio needs also {missing}")
    else:
        if len(mean_fields) != 2:
            raise ValueError(f"{where}: a mean arm needs 'sum' and 'sum_squares'")
        if success or ratio or ratio_pre:
            extra = success + ratio + ratio_pre
            raise ValueError(f"{where}: a mean arm takes 'sum'/'sum_squares', not {extra}")
        if pre and len(pre) != len(PRE_FIELDS):
            raise ValueError(f"{where}: CUPED needs all of {list(PRE_FIELDS)}, got {pre}")


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
