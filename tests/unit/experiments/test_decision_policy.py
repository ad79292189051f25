"""The promote / reject / continue policy on analyses computed by the real statistics engine."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tuneloop.experiments.decision import (
    ArmMetrics,
    Decision,
    DecisionPolicy,
    Evidence,
    compare_performance,
    decide,
)
from tuneloop.experiments.stats.analysis import AnalysisRequest, AnalysisResult, analyze


def engagement(
    control: tuple[int, int], candidate: tuple[int, int], **options: Any
) -> AnalysisResult:
    """An engagement analysis from (units, engagements) per arm; sequential by default."""
    arms = [
        {"name": "baseline", "n": control[0], "successes": control[1]},
        {"name": "candidate", "n": candidate[0], "successes": candidate[1]},
    ]
    return analyze(
        AnalysisRequest.model_validate({"metric": "proportion", "arms": arms, **options})
    )


def arm(rate: float, n: int, **overrides: Any) -> ArmMetrics:
    values = {
        "engagement_rate": rate,
        "cost_per_token": 2e-6,
        "latency_ms": 800.0,
        "error_rate": 0.01,
        "sample_size": n,
        "latency_p95_ms": 1500.0,
        "quality_score": 0.7,
    }
    return ArmMetrics(**{**values, **overrides})


WIN = engagement((20000, 1000), (20000, 1300))  # +30 % engagement, clearly significant
BASELINE = arm(0.05, 20000)
CHEAPER = arm(0.065, 20000, cost_per_token=1.6e-6)  # 20 % cheaper per token


def evidence(
    primary: AnalysisResult = WIN, candidate: ArmMetrics = CHEAPER, **changes: Any
) -> Evidence:
    base = Evidence(
        baseline=BASELINE, candidate=candidate, primary=primary, elapsed_hours=48, planned_hours=168
    )
    return replace(base, **changes)


def joined(decision: Decision) -> str:
    return " | ".join(decision.reasons)


def test_the_default_policy_is_the_source_designs_rule() -> None:
    policy = DecisionPolicy()
    assert (policy.min_engagement_lift, policy.min_cost_efficiency_gain, policy.significance) == (
        0.15,
        0.10,
        0.05,
    )


def test_a_clear_significant_win_that_is_also_cheaper_is_promoted_early() -> None:
    decision = decide(evidence())
    assert decision.recommendation == "promote", joined(decision)
    assert decision.is_significant
    assert decision.p_value is not None
    assert decision.p_value < 0.05
    assert decision.effect_size == "small"  # 5 % -> 6.5 % engagement is Cohen's-h small
    assert "engagement lift +30.0% > 15%" in joined(decision)
    assert decision.performance.cost_efficiency_gain == pytest.approx(0.2)


def test_a_win_that_is_not_cheaper_waits_and_is_rejected_at_the_end() -> None:
    pricey = replace(CHEAPER, cost_per_token=1.95e-6)  # 2.5 % cheaper
    running = decide(evidence(candidate=pricey))
    assert running.recommendation == "continue"
    assert "cost-efficiency gain +2.5% is not above 10%" in joined(running)
    ended = decide(evidence(candidate=pricey, elapsed_hours=168))
    assert ended.recommendation == "reject"
    assert "ended without a win" in joined(ended)


def test_a_real_but_too_small_lift_is_rejected_once_it_cannot_reach_the_minimum() -> None:
    small = engagement((200000, 10000), (200000, 10800))  # +8 %, interval well below +15 %
    decision = decide(evidence(primary=small, candidate=arm(0.054, 200000, cost_per_token=1e-6)))
    assert decision.recommendation == "reject"
    assert "can no longer win" in joined(decision)


def test_an_undecided_sequential_test_continues() -> None:
    unclear = engagement((3000, 150), (3000, 180))
    decision = decide(evidence(primary=unclear, candidate=arm(0.06, 3000, cost_per_token=1e-6)))
    assert decision.recommendation == "continue"
    assert "not significant" in joined(decision)
    assert "hour 48 of 168" in joined(decision)


def test_a_significant_drop_is_rejected() -> None:
    worse = engagement((20000, 1300), (20000, 1000))
    decision = decide(evidence(primary=worse, candidate=arm(0.05, 20000)))
    assert decision.recommendation == "reject"
    assert "significantly lower" in joined(decision)


def test_a_sample_ratio_mismatch_blocks_everything() -> None:
    skewed = engagement((20000, 1000), (17000, 1105))
    assert not skewed.srm.passed
    decision = decide(evidence(primary=skewed, elapsed_hours=168))
    assert decision.recommendation == "continue"
    assert decision.blocked
    assert "sample ratio mismatch" in joined(decision)


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ({"error_rate": 0.08}, "error rate 8.0% is above the 5% limit"),
        ({"latency_p95_ms": 2600.0}, "p95 latency 2600 ms is above the 2000 ms limit"),
        ({"latency_p95_ms": None, "latency_ms": 2100.0}, "mean latency 2100 ms"),
    ],
)
def test_a_hard_guardrail_breach_rejects_even_a_winner(
    override: dict[str, Any], words: str
) -> None:
    decision = decide(evidence(candidate=replace(CHEAPER, **override)))
    assert decision.recommendation == "reject"
    assert words in joined(decision)


def test_a_significant_guardrail_regression_vetoes_promotion() -> None:
    errors = engagement((20000, 100), (20000, 180))  # error rate 0.5 % -> 0.9 %: under the limit
    latency = engagement((20000, 2000), (20000, 2010))  # share of slow responses: unchanged
    guardrails = {"error rate": errors, "slow responses": latency}
    running = decide(evidence(guardrails=guardrails))
    assert running.recommendation == "continue"
    assert "candidate error rate is significantly worse" in joined(running)
    assert "slow responses" not in joined(running)
    assert decide(evidence(guardrails=guardrails, elapsed_hours=170)).recommendation == "reject"
    assert decide(evidence(guardrails={"slow responses": latency})).recommendation == "promote"


def test_a_fixed_horizon_test_is_only_read_at_the_end() -> None:
    fixed = engagement((20000, 1000), (20000, 1300), method="fixed")
    early = decide(evidence(primary=fixed))
    assert early.recommendation == "continue"
    assert "fixed-horizon" in joined(early)
    assert decide(evidence(primary=fixed, elapsed_hours=168)).recommendation == "promote"


def test_no_usable_result_continues_then_rejects() -> None:
    empty = engagement((1, 0), (1, 0))
    assert empty.comparisons[0].error == "NOT_ENOUGH_DATA"
    decision = decide(evidence(primary=empty, candidate=arm(0.0, 1)))
    assert decision.recommendation == "continue"
    assert "NOT_ENOUGH_DATA" in joined(decision)
    assert decision.effect_size is None
    ended = decide(evidence(primary=empty, candidate=arm(0.0, 1), elapsed_hours=200))
    assert ended.recommendation == "reject"


def test_early_decisions_wait_for_the_minimum_sample() -> None:
    tiny = engagement((400, 10), (400, 40))  # "significant" on 10 vs 40 engagements
    decision = decide(evidence(primary=tiny, candidate=arm(0.1, 400, cost_per_token=1e-6)))
    assert decision.recommendation == "continue"
    assert "early decision needs 1000" in joined(decision)


def test_thresholds_are_configurable() -> None:
    modest = engagement((100000, 5000), (100000, 5500))  # +10 %
    candidate = arm(0.055, 100000, cost_per_token=1.9e-6)  # 5 % cheaper
    assert decide(evidence(primary=modest, candidate=candidate)).recommendation != "promote"
    lenient = DecisionPolicy(min_engagement_lift=0.05, min_cost_efficiency_gain=0.02)
    decision = decide(evidence(primary=modest, candidate=candidate), lenient)
    assert decision.recommendation == "promote", joined(decision)


def test_performance_comparison_signs_mean_better_is_positive() -> None:
    baseline = arm(0.05, 100, latency_ms=1000.0, quality_score=0.5)
    candidate = arm(0.06, 100, cost_per_token=1.5e-6, latency_ms=900.0, quality_score=0.6)
    performance = compare_performance(baseline, candidate)
    assert performance.engagement_lift == pytest.approx(0.2)
    assert performance.cost_efficiency_gain == pytest.approx(0.25)
    assert performance.latency_improvement == pytest.approx(0.1)
    assert performance.quality_improvement == pytest.approx(0.2)
    unknown = compare_performance(replace(baseline, quality_score=None), candidate)
    assert unknown.quality_improvement is None


def test_the_bayesian_rule_is_chance_to_win_at_least_x_and_risk_at_most_y() -> None:
    # +12 % engagement on 20000 units an arm: chance to win 0.994, risk 8.6e-5
    bayes = engagement((20000, 1000), (20000, 1120), engine="bayesian")
    comparison = bayes.comparisons[0]
    assert comparison.p_value is None and comparison.chance_to_win is not None
    assert 0.95 < comparison.chance_to_win < 0.999
    lenient = DecisionPolicy(min_engagement_lift=0.05)
    promoted = decide(evidence(bayes), lenient)
    assert promoted.recommendation == "promote", joined(promoted)
    assert promoted.is_significant and promoted.p_value is None
    assert "chance to win" in joined(promoted)
    risky = decide(evidence(bayes), replace(lenient, max_risk=1e-5))
    assert not risky.is_significant and risky.recommendation == "continue"
    sure = decide(evidence(bayes), replace(lenient, min_chance_to_win=0.999))
    assert not sure.is_significant


def test_a_bayesian_drop_rejects() -> None:
    bayes = engagement((20000, 1000), (20000, 800), engine="bayesian")
    decision = decide(evidence(bayes, candidate=arm(0.04, 20000)))
    assert decision.recommendation == "reject"
    assert "significantly lower (chance to win" in joined(decision)


def test_an_adjusted_p_value_is_what_the_policy_reads() -> None:
    arms = [
        {"name": "baseline", "n": 20000, "successes": 1000},
        {"name": "candidate", "n": 20000, "successes": 1110},
        {"name": "other", "n": 20000, "successes": 1000},
        {"name": "third", "n": 20000, "successes": 1000},
    ]
    plain = analyze(
        AnalysisRequest.model_validate({"metric": "proportion", "method": "fixed", "arms": arms})
    )
    held = analyze(
        AnalysisRequest.model_validate(
            {
                "metric": "proportion",
                "method": "fixed",
                "arms": arms,
                "correction": "holm-bonferroni",
            }
        )
    )
    policy = DecisionPolicy(min_engagement_lift=0.05)
    raw_p = plain.comparisons[0].p_value
    assert raw_p is not None and raw_p < 0.05
    assert held.comparisons[0].adjusted_p_value == pytest.approx(min(3 * raw_p, 1.0))
    only = [plain.comparisons[0]], [held.comparisons[0]]
    ended = {"elapsed_hours": 168}  # a fixed test is read at the planned end
    raw = decide(evidence(plain.model_copy(update={"comparisons": only[0]}), **ended), policy)
    assert raw.is_significant and raw.recommendation == "promote"
    corrected = decide(evidence(held.model_copy(update={"comparisons": only[1]}), **ended), policy)
    assert not corrected.is_significant and corrected.recommendation == "reject"


def test_an_unmeasured_cost_is_skipped_with_a_visible_reason_never_compared_as_zeros() -> None:
    unpriced = {"cost_per_token": 0.0, "cost_measured": False}
    seen = evidence(candidate=arm(0.065, 20000, **unpriced), baseline=arm(0.05, 20000, **unpriced))
    decision = decide(seen)
    assert decision.recommendation == "promote"
    assert any("cost-efficiency criterion skipped" in r for r in decision.reasons)
    assert not any("is not above 10%" in r for r in decision.reasons)


def test_an_unmeasured_cost_blocks_promotion_when_the_policy_says_so() -> None:
    seen = evidence(candidate=arm(0.065, 20000, cost_per_token=0.0, cost_measured=False))
    decision = decide(seen, DecisionPolicy(unmeasured_cost="block"))
    assert decision.recommendation == "continue"
    assert any("cost-efficiency gain unknown" in r for r in decision.reasons)


def test_a_measured_cost_that_did_not_fall_is_still_unmet() -> None:
    decision = decide(evidence(candidate=arm(0.065, 20000)))  # same cost per token
    assert decision.recommendation == "continue"
    assert any("cost-efficiency gain +0.0% is not above 10%" in r for r in decision.reasons)
