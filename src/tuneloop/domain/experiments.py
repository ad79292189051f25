"""Experiment value types: lifecycle states and their allowed transitions, arms, criteria."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from tuneloop.errors import InvalidStateError


class ExperimentStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"
    DECIDED = "decided"


# A stopped experiment can still be decided (its data is final); a decided one is closed.
TRANSITIONS: dict[ExperimentStatus, frozenset[ExperimentStatus]] = {
    ExperimentStatus.DRAFT: frozenset({ExperimentStatus.RUNNING, ExperimentStatus.STOPPED}),
    ExperimentStatus.RUNNING: frozenset({ExperimentStatus.STOPPED, ExperimentStatus.DECIDED}),
    ExperimentStatus.STOPPED: frozenset({ExperimentStatus.DECIDED}),
    ExperimentStatus.DECIDED: frozenset(),
}


def can_transition(current: ExperimentStatus, target: ExperimentStatus) -> bool:
    return target in TRANSITIONS[current]


def check_transition(key: str, current: ExperimentStatus, target: ExperimentStatus) -> None:
    """Raise ``InvalidStateError`` unless ``current -> target`` is allowed."""
    if not can_transition(current, target):
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (it is final)"
        raise InvalidStateError(
            f"experiment {key!r} is {current}; it cannot become {target} (allowed: {allowed})"
        )


class EventKind(StrEnum):
    """What an outcome event records: a unit saw an arm, a model generated, or engagement."""

    EXPOSURE = "exposure"
    OUTCOME = "outcome"
    GENERATION = "generation"


class Recommendation(StrEnum):
    PROMOTE = "promote"
    REJECT = "reject"
    CONTINUE = "continue"


@dataclass(frozen=True)
class ArmSpec:
    """One arm: a name, the model (id + version) it serves, and its share of traffic."""

    name: str
    model_id: str
    version: str
    weight: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArmSpec:
        return cls(
            name=str(data["name"]),
            model_id=str(data["model_id"]),
            version=str(data["version"]),
            weight=float(data["weight"]),
        )


@dataclass(frozen=True)
class SuccessCriteria:
    """What a candidate must show to be promoted (the documented defaults), and how the
    statistics judge it: the engine, the Bayesian rule and the multiple-testing correction."""

    min_engagement_lift: float = 0.15
    min_cost_efficiency_gain: float = 0.10
    significance_threshold: float = 0.05
    stats_engine: str = "frequentist"  # or "bayesian"
    min_chance_to_win: float = 0.95  # bayesian: significant when chance to win >= this ...
    max_risk: float = 0.01  # ... and the relative risk of choosing the candidate <= this
    correction: str = "none"  # across arms and guardrails: holm-bonferroni, benjamini-hochberg

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> SuccessCriteria:
        data = data or {}
        defaults = cls()
        number = {
            name: float(data.get(name, getattr(defaults, name)))
            for name in (
                "min_engagement_lift",
                "min_cost_efficiency_gain",
                "significance_threshold",
                "min_chance_to_win",
                "max_risk",
            )
        }
        return cls(
            **number,
            stats_engine=str(data.get("stats_engine", defaults.stats_engine)),
            correction=str(data.get("correction", defaults.correction)),
        )


# The metrics every experiment reports, each a mean over units (the randomisation unit).
METRICS = ("engagement", "cost_per_token", "latency_ms", "error_rate")


@dataclass(frozen=True)
class Moments:
    """Sufficient statistics of one metric in one arm: count, sum and sum of squares."""

    n: int
    sum: float
    sum_squares: float

    @property
    def mean(self) -> float | None:
        return self.sum / self.n if self.n else None

    @property
    def variance(self) -> float | None:
        """The sample variance (n - 1 denominator), or None below two units."""
        if self.n < 2:
            return None
        return max(self.sum_squares - self.sum * self.sum / self.n, 0.0) / (self.n - 1)


# Ratio metrics: per unit a numerator and a denominator, summed (engagement per post is the
# unit's total engagement over its posts; cost per token its total cost over its tokens).
RATIO_METRICS = ("engagement_per_post", "cost_per_token")


@dataclass(frozen=True)
class RatioMoments:
    """Sufficient statistics of a ratio metric in one arm (sums over units with a value)."""

    n: int
    numerator_sum: float
    numerator_sum_squares: float
    denominator_sum: float
    denominator_sum_squares: float
    numerator_denominator_sum_products: float

    @property
    def mean(self) -> float | None:
        return self.numerator_sum / self.denominator_sum if self.denominator_sum else None


@dataclass(frozen=True)
class PrePeriod:
    """A metric before each unit's first exposure (the CUPED covariate), over the units
    that have the metric after exposure; a unit with no pre-period events counts as 0."""

    units_with_data: int
    pre_sum: float
    pre_sum_squares: float
    post_pre_sum_products: float


@dataclass(frozen=True)
class RatioPrePeriod:
    """A ratio metric before each unit's first exposure (M0, D0; 0 without history), over
    the units that have the ratio after exposure (M, D): the sums CUPED of a ratio needs."""

    units_with_data: int
    pre_numerator_sum: float
    pre_numerator_sum_squares: float
    pre_denominator_sum: float
    pre_denominator_sum_squares: float
    numerator_pre_numerator_sum_products: float
    denominator_pre_denominator_sum_products: float
    pre_numerator_pre_denominator_sum_products: float
    numerator_pre_denominator_sum_products: float
    pre_numerator_denominator_sum_products: float


@dataclass(frozen=True)
class ArmStatistics:
    """What the database knows about one arm: exposed units and each metric's moments."""

    arm: str
    exposed_units: int
    metrics: dict[str, Moments]
    ratios: dict[str, RatioMoments] = field(default_factory=dict)
    pre_period: dict[str, PrePeriod] = field(default_factory=dict)
    ratio_pre_period: dict[str, RatioPrePeriod] = field(default_factory=dict)
