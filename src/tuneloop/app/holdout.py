"""The holdout report: the reference model's units against everyone else's, with an interval.

Units of the permanent holdout (``experiments.holdout``) have been served the reference
model (the tenant's first champion, or ``experiments.holdout_model``) since the holdout
began, whatever was promoted; everyone else got the loop's successive champions,
experiments and rollouts. Their difference in engagement is the cumulative effect of
every promotion — what single A/B tests, each against the champion of the day, cannot
show (a chain of small "wins" that each regressed a little would add up here).

Units are attributed by the same hash that routed them (a function of tenant and unit),
so no event needs a mark of its own; the analysis is the experiments' statistics engine
(``experiments.stats``): a fixed-horizon Welch comparison of per-unit mean engagement,
everyone else relative to the holdout, and the split checked against the configured share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tuneloop.experiments.holdout import EVERYONE_ELSE, HOLDOUT, holdout_mask
from tuneloop.experiments.stats.analysis import AnalysisResult, analyze
from tuneloop.experiments.stats.request import AnalysisRequest, ArmIn
from tuneloop.rollout.checks import model_label
from tuneloop.store.holdout import unit_engagement
from tuneloop.store.models_registry import holdout_reference
from tuneloop.wiring import Container


@dataclass
class GroupSums:
    """A group's units and the sums of their mean engagement (sufficient statistics)."""

    units: int = 0
    total: float = 0.0
    squares: float = 0.0

    def add(self, values: list[float]) -> None:
        self.units += len(values)
        self.total += sum(values)
        self.squares += sum(v * v for v in values)

    @property
    def mean(self) -> float | None:
        return self.total / self.units if self.units else None

    def arm(self, name: str) -> ArmIn:
        return ArmIn(name=name, n=self.units, sum=self.total, sum_squares=self.squares)


@dataclass(frozen=True)
class HoldoutReport:
    tenant: str
    share: float
    reference: str | None  # MODEL@VERSION
    since: datetime | None
    groups: dict[str, GroupSums]
    analysis: AnalysisResult | None
    message: str

    def to_json(self) -> dict[str, Any]:
        comparison = self.analysis.comparisons[0] if self.analysis else None
        return {
            "tenant": self.tenant,
            "holdout_share": self.share,
            "reference": self.reference,
            "since": self.since.isoformat() if self.since else None,
            "groups": {
                name: {"units": g.units, "mean_engagement": g.mean}
                for name, g in self.groups.items()
            },
            "effect": None
            if comparison is None
            else {
                "difference": "relative",
                "estimate": comparison.estimate,
                "ci": comparison.ci,
                "p_value": comparison.p_value,
                "significant": comparison.significant,
                "alpha": self.analysis.alpha if self.analysis else None,
                "error": comparison.error,
            },
            "srm": None if self.analysis is None else self.analysis.srm.model_dump(),
            "message": self.message,
        }


def holdout_report(
    container: Container,
    *,
    tenant: str,
    since: datetime | None = None,
    alpha: float = 0.05,
) -> HoldoutReport:
    """Holdout vs everyone else: units, mean engagement, and the relative lift with its CI."""
    share = container.settings.experiments.holdout_share
    groups = {HOLDOUT: GroupSums(), EVERYONE_ELSE: GroupSums()}
    reference = _reference(container, tenant)
    if share <= 0:
        return HoldoutReport(
            tenant,
            share,
            reference,
            since,
            groups,
            None,
            "no holdout: experiments.holdout_share is 0",
        )
    for chunk in unit_engagement(container.engine, tenant, since=since):
        mask = holdout_mask(tenant, (unit for unit, _ in chunk), share)
        groups[HOLDOUT].add([v for (_, v), held in zip(chunk, mask, strict=True) if held])
        groups[EVERYONE_ELSE].add([v for (_, v), held in zip(chunk, mask, strict=True) if not held])
    request = AnalysisRequest(
        metric="mean",
        difference="relative",
        method="fixed",  # one read of the whole period, not a sequence of looks
        alpha=alpha,
        weights=[share, 1.0 - share],
        arms=[groups[HOLDOUT].arm(HOLDOUT), groups[EVERYONE_ELSE].arm(EVERYONE_ELSE)],
    )
    analysis = analyze(request)
    return HoldoutReport(tenant, share, reference, since, groups, analysis, _message(analysis))


def _reference(container: Container, tenant: str) -> str | None:
    pinned = container.settings.experiments.holdout_model
    if pinned is not None:
        return pinned
    found = holdout_reference(container.engine, tenant)
    return model_label(*found) if found is not None else None


def _message(analysis: AnalysisResult) -> str:
    c = analysis.comparisons[0]
    if c.error is not None or c.estimate is None or c.ci is None:
        return f"no estimate yet: {c.error or 'not enough data'}"
    low, high = c.ci
    verdict = "significant" if c.significant else "not significant"
    return (
        f"everyone else vs holdout: {c.estimate:+.1%} engagement "
        f"({1 - analysis.alpha:.0%} CI {_pct(low)} to {_pct(high)}; {verdict})"
    )


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{value:+.1%}"
