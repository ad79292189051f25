"""The promote / reject / continue policy for a candidate model's A/B test (pure).

The source design's rule, with its thresholds in :class:`DecisionPolicy`: promote when the
engagement lift is above 15 %, the cost-efficiency gain above 10 % and the engagement result
significant at 0.05. Around it, in this order:

1. a sample-ratio mismatch blocks every decision (the comparison cannot be trusted);
2. a hard guardrail (candidate error rate above 5 %, latency above 2000 ms) rejects at once;
3. without a usable engagement result (an error code), the test continues to its end;
4. a fixed-horizon test is only read at the planned end (peeking would inflate its
   false-positive rate); a sequential one may decide at any hour, once each arm has
   ``min_sample_size`` units;
5. a significant regression on a guardrail metric (error rate, latency) vetoes promotion;
6. a significant drop in engagement, or an always-valid interval whose upper end is below
   the minimum lift (it can no longer win), rejects early;
7. at the end of the planned duration, anything short of a win is rejected.

A criterion whose metric is not measured is never judged on zeros. Cost is unmeasured when
an arm recorded no positive cost (no prices configured for its upstream or for
``serving.local``); ``DecisionPolicy.unmeasured_cost`` then says what happens: ``"skip"``
(the default) leaves the cost criterion out and says so in the reasons, ``"block"`` counts it
as unmet, so such a test can never promote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from tuneloop.experiments.stats.analysis import AnalysisResult, Comparison
from tuneloop.experiments.stats.effect_size import EffectSizeLabel, effect_size_label

Recommendation = Literal["promote", "reject", "continue"]


@dataclass(frozen=True)
class DecisionPolicy:
    """Success criteria (the API's ``success_criteria``) and guardrail limits."""

    min_engagement_lift: float = 0.15
    min_cost_efficiency_gain: float = 0.10
    significance: float = 0.05
    max_error_rate: float = 0.05
    max_latency_ms: float = 2000.0
    unmeasured_cost: Literal["skip", "block"] = "skip"
    """What an unmeasured cost-efficiency criterion does (see the module docstring)."""
    min_sample_size: int = 1000
    """Units per arm before an early (pre-deadline) decision: the always-valid interval is
    asymptotic, and its first looks, on a handful of engagements, are its weak spot (in the
    A/A simulation of docs/statistics.md a fifth of its false positives come at hour 1)."""
    min_chance_to_win: float = 0.95
    """Bayesian engine: significant when the chance to win is at least this ..."""
    max_risk: float = 0.01
    """... and the risk of the chosen arm (expected loss, relative) at most this."""


@dataclass(frozen=True)
class ArmMetrics:
    """One arm's observed metric summaries over the test so far."""

    engagement_rate: float
    cost_per_token: float
    latency_ms: float
    error_rate: float
    sample_size: int
    latency_p95_ms: float | None = None
    quality_score: float | None = None
    cost_measured: bool = True  # False: no positive cost recorded (prices unset)


@dataclass(frozen=True)
class PerformanceComparison:
    """Candidate vs baseline as relative changes; positive is better for every field."""

    engagement_lift: float | None
    cost_efficiency_gain: float | None
    quality_improvement: float | None
    latency_improvement: float | None


@dataclass(frozen=True)
class Evidence:
    """Everything the policy looks at. ``primary`` is the engagement analysis (control =
    baseline, first comparison = candidate) and carries the SRM check; each ``guardrails``
    analysis is of a metric where higher is worse (error rate, latency)."""

    baseline: ArmMetrics
    candidate: ArmMetrics
    primary: AnalysisResult
    elapsed_hours: float
    planned_hours: float
    guardrails: Mapping[str, AnalysisResult] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """The recommendation, the reasons behind it, and what the evaluation API reports."""

    recommendation: Recommendation
    reasons: tuple[str, ...]
    effect_size: EffectSizeLabel | None
    is_significant: bool
    p_value: float | None
    blocked: bool
    performance: PerformanceComparison


def _relative_change(new: float | None, old: float | None) -> float | None:
    """new / old - 1 (None when either is unknown or old is zero)."""
    if new is None or old is None or old == 0:
        return None
    return new / old - 1


def _relative_drop(new: float, old: float) -> float | None:
    """1 - new / old: how much smaller new is, as a share of old."""
    return None if old == 0 else 1 - new / old


def compare_performance(baseline: ArmMetrics, candidate: ArmMetrics) -> PerformanceComparison:
    """Engagement lift and quality improvement are relative increases; cost-efficiency
    gain and latency improvement are relative *decreases* of cost per token and latency."""
    return PerformanceComparison(
        engagement_lift=_relative_change(candidate.engagement_rate, baseline.engagement_rate),
        cost_efficiency_gain=_relative_drop(candidate.cost_per_token, baseline.cost_per_token),
        quality_improvement=_relative_change(candidate.quality_score, baseline.quality_score),
        latency_improvement=_relative_drop(candidate.latency_ms, baseline.latency_ms),
    )


def hard_breaches(candidate: ArmMetrics, policy: DecisionPolicy) -> list[str]:
    """Absolute guardrail limits the candidate breaks (p95 latency when known, else mean)."""
    breaches = []
    if candidate.error_rate > policy.max_error_rate:
        breaches.append(
            f"candidate error rate {candidate.error_rate:.1%} is above the "
            f"{policy.max_error_rate:.0%} limit"
        )
    latency, kind = candidate.latency_p95_ms, "p95"
    if latency is None:
        latency, kind = candidate.latency_ms, "mean"
    if latency > policy.max_latency_ms:
        breaches.append(
            f"candidate {kind} latency {latency:.0f} ms is above the "
            f"{policy.max_latency_ms:.0f} ms limit"
        )
    return breaches


def _significant(
    comparison: Comparison,
    policy: DecisionPolicy,
    *,
    increase: bool = True,
    inverse: bool = False,
) -> bool:
    """Significant in the given direction (an increase by default): p <= significance (the
    adjusted p-value under a correction), or for a Bayesian result the chance of moving that
    way >= min_chance_to_win with the risk of that conclusion <= max_risk. ``inverse`` says
    the analysis reported them for a lower-is-better metric (chance to win = of a drop)."""
    if comparison.error is not None or comparison.estimate is None:
        return False
    if comparison.chance_to_win is not None:
        up = increase != inverse  # the direction the reported chance to win points to
        win = comparison.chance_to_win if up else 1 - comparison.chance_to_win
        risk = comparison.risk_treatment if up else comparison.risk_control
        return win >= policy.min_chance_to_win and (risk or 0.0) <= policy.max_risk
    p_value = comparison.adjusted_p_value
    p_value = comparison.p_value if p_value is None else p_value
    if p_value is None:
        return False
    direction = comparison.estimate > 0 if increase else comparison.estimate < 0
    return p_value <= policy.significance and direction


def evidence_text(comparison: Comparison) -> str:
    """How strong a result is, in words: its (adjusted) p-value or its chance to win."""
    if comparison.chance_to_win is not None:
        return (
            f"chance to win {comparison.chance_to_win:.1%}, risk of the baseline "
            f"{comparison.risk_control or 0.0:.2g}, of the candidate "
            f"{comparison.risk_treatment or 0.0:.2g}"
        )
    if comparison.adjusted_p_value is not None:
        return f"adjusted p = {comparison.adjusted_p_value:.2g}"
    return f"p = {comparison.p_value:.2g}"


def regressions(guardrails: Mapping[str, AnalysisResult], policy: DecisionPolicy) -> list[str]:
    """Guardrail metrics on which the candidate is significantly worse than the baseline."""
    found = []
    for name, analysis in guardrails.items():
        comparison = analysis.comparisons[0]
        if _significant(comparison, policy, inverse=analysis.inverse):
            found.append(
                f"candidate {name} is significantly worse (+{comparison.estimate:.3g} "
                f"{analysis.difference}, {evidence_text(comparison)}): promotion vetoed"
            )
    return found


def cost_skipped(evidence: Evidence, policy: DecisionPolicy) -> str | None:
    """Why the cost criterion is left out, or None when it is judged."""
    unmeasured = [
        arm
        for arm, metrics in (("baseline", evidence.baseline), ("candidate", evidence.candidate))
        if not metrics.cost_measured
    ]
    if not unmeasured or policy.unmeasured_cost != "skip":
        return None
    return (
        f"cost-efficiency criterion skipped: no cost recorded for the {' and '.join(unmeasured)} "
        "arm (set the serving prices to judge it; unmeasured_cost=skip)"
    )


def unmet_criteria(
    performance: PerformanceComparison,
    significant: bool,
    policy: DecisionPolicy,
    *,
    judge_cost: bool = True,
) -> list[str]:
    """The success criteria not (yet) met, each as a sentence."""
    unmet: list[str] = []
    lift, gain = performance.engagement_lift, performance.cost_efficiency_gain
    if lift is None or lift <= policy.min_engagement_lift:
        shown = "unknown" if lift is None else f"{lift:+.1%}"
        unmet.append(f"engagement lift {shown} is not above {policy.min_engagement_lift:.0%}")
    if judge_cost and (gain is None or gain <= policy.min_cost_efficiency_gain):
        shown = "unknown" if gain is None else f"{gain:+.1%}"
        unmet.append(
            f"cost-efficiency gain {shown} is not above {policy.min_cost_efficiency_gain:.0%}"
        )
    if not significant:
        unmet.append(f"the engagement lift is not significant at {policy.significance:g}")
    return unmet


def _lift_upper_bound(evidence: Evidence, comparison: Comparison) -> float | None:
    """The always-valid interval's upper end as a relative lift (None unless sequential)."""
    if evidence.primary.method != "sequential" or comparison.ci is None or comparison.ci[1] is None:
        return None
    upper = comparison.ci[1]
    if evidence.primary.difference == "absolute":
        if comparison.control_mean == 0:
            return None
        upper = upper / comparison.control_mean
    return upper


Verdict = tuple[Recommendation, list[str]]


def _significance_rule(comparison: Comparison, policy: DecisionPolicy) -> str:
    if comparison.chance_to_win is not None:
        return (
            f"{evidence_text(comparison)} (needs >= {policy.min_chance_to_win:.0%} "
            f"and <= {policy.max_risk:g})"
        )
    return f"{evidence_text(comparison)} <= {policy.significance:g}"


def decide(evidence: Evidence, policy: DecisionPolicy | None = None) -> Decision:
    """Recommend promote, reject or continue, with the reasons a person can check."""
    policy = policy or DecisionPolicy()
    comparison = evidence.primary.comparisons[0]
    significant = _significant(comparison, policy)
    performance = compare_performance(evidence.baseline, evidence.candidate)
    if not (evidence.baseline.cost_measured and evidence.candidate.cost_measured):
        performance = replace(performance, cost_efficiency_gain=None)  # unknown, not 0 or 100 %
    verdict = _gate(evidence, comparison, policy) or _judge(
        evidence, comparison, significant, performance, policy
    )
    effect = comparison.standardized_effect if comparison.error is None else None
    return Decision(
        recommendation=verdict[0],
        reasons=tuple(verdict[1]),
        effect_size=None if effect is None else effect_size_label(effect),
        is_significant=significant,
        p_value=comparison.p_value,
        blocked=not evidence.primary.srm.passed,
        performance=performance,
    )


def _progress(evidence: Evidence) -> str:
    return f"hour {evidence.elapsed_hours:.0f} of {evidence.planned_hours:.0f}"


def _gate(evidence: Evidence, comparison: Comparison, policy: DecisionPolicy) -> Verdict | None:
    """Stop before weighing the effect: broken data, an unsafe candidate, a test not readable."""
    srm = evidence.primary.srm
    if not srm.passed:
        why = srm.error or f"p = {srm.p_value:.2g} < {srm.threshold:g}"
        return "continue", [
            f"sample ratio mismatch ({why}): assignment or logging is broken, "
            "so no decision can be made until it is fixed"
        ]
    breaches = hard_breaches(evidence.candidate, policy)
    if breaches:
        return "reject", [*breaches, "stopping the test to protect users"]
    ended = evidence.elapsed_hours >= evidence.planned_hours
    if comparison.error is not None:
        reason = f"no usable engagement result ({comparison.error})"
        if ended:
            return "reject", [reason, f"the planned {evidence.planned_hours:.0f} hours have ended"]
        return "continue", [reason, _progress(evidence)]
    if evidence.primary.method == "fixed" and not ended:
        return "continue", [
            f"fixed-horizon test: it is read only at the planned end ({_progress(evidence)}); "
            "reading it earlier would inflate false positives (use the sequential method)"
        ]
    smallest = min(evidence.primary.control.n, comparison.n)
    if not ended and smallest < policy.min_sample_size:
        return "continue", [
            f"{smallest} units in the smaller arm; an early decision needs "
            f"{policy.min_sample_size}",
            _progress(evidence),
        ]
    return None


def _judge(
    evidence: Evidence,
    comparison: Comparison,
    significant: bool,
    performance: PerformanceComparison,
    policy: DecisionPolicy,
) -> Verdict:
    """Weigh the effect against the success criteria and the guardrail regressions."""
    ended = evidence.elapsed_hours >= evidence.planned_hours
    vetoes = regressions(evidence.guardrails, policy)
    skipped = cost_skipped(evidence, policy)
    unmet = unmet_criteria(performance, significant, policy, judge_cost=skipped is None)
    if skipped is not None:
        unmet.append(skipped)  # not a failure: said, so no one reads it as one
    if not [reason for reason in unmet if reason != skipped] and not vetoes:
        cost = skipped or (
            f"cost-efficiency gain {performance.cost_efficiency_gain:+.1%} > "
            f"{policy.min_cost_efficiency_gain:.0%}"
        )
        return "promote", [
            f"engagement lift {performance.engagement_lift:+.1%} > "
            f"{policy.min_engagement_lift:.0%}",
            cost,
            f"significant: {_significance_rule(comparison, policy)}",
            "no guardrail regressed",
        ]
    if _significant(comparison, policy, increase=False):
        return "reject", [f"engagement is significantly lower ({evidence_text(comparison)})"]
    upper = _lift_upper_bound(evidence, comparison)
    if upper is not None and upper < policy.min_engagement_lift:
        return "reject", [
            f"the always-valid interval's upper end (lift {upper:+.1%}) is below the minimum "
            f"lift {policy.min_engagement_lift:.0%}: the candidate can no longer win"
        ]
    if ended:
        return "reject", [
            f"the planned {evidence.planned_hours:.0f} hours ended without a win",
            *unmet,
            *vetoes,
        ]
    return "continue", [*unmet, *vetoes, _progress(evidence)]
