"""The rollout policy and the guardrail checks, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tuneloop.domain.experiments import Moments
from tuneloop.errors import InvalidInputError
from tuneloop.rollout.checks import engagement_check, error_rate_check, latency_check
from tuneloop.rollout.policy import (
    Action,
    CheckResult,
    Guardrails,
    RolloutConfig,
    RolloutState,
    Strategy,
    Verdict,
    decide,
)
from tuneloop.store.deployments import GenerationHealth

T0 = datetime(2025, 1, 2, 9, 0, tzinfo=UTC)
PASS = CheckResult("engagement", Verdict.PASS, "fine")
WAIT = CheckResult("error_rate", Verdict.INCONCLUSIVE, "too few")
FAIL = CheckResult("latency_p95", Verdict.FAIL, "slow", trigger="response_time_above_2000ms")


def _state(
    traffic: float = 0.1, strategy: Strategy = Strategy.GRADUAL, **config: float
) -> RolloutState:
    return RolloutState(strategy, traffic, 1, T0, RolloutConfig(**config))


def test_advances_by_the_increment_once_the_hold_is_over_and_checks_pass() -> None:
    decision = decide(_state(0.1), [PASS], now=T0 + timedelta(hours=24))
    assert (decision.action, decision.traffic) == (Action.ADVANCE, pytest.approx(0.2))


def test_holds_before_the_hold_time_and_on_inconclusive_checks() -> None:
    assert decide(_state(), [PASS], now=T0 + timedelta(hours=23)).action is Action.HOLD
    waiting = decide(_state(), [PASS, WAIT], now=T0 + timedelta(hours=30))
    assert waiting.action is Action.HOLD
    assert waiting.reasons == ("inconclusive: too few",)


def test_a_failed_check_rolls_back_at_once_even_mid_step_and_for_a_canary() -> None:
    for state in (_state(0.4), _state(0.05, Strategy.CANARY, initial_traffic=0.05)):
        decision = decide(state, [PASS, WAIT, FAIL], now=T0 + timedelta(minutes=5))
        assert (decision.action, decision.traffic) == (Action.ROLLBACK, 0.0)
        assert decision.triggers == ("response_time_above_2000ms",)


def test_reaching_full_traffic_completes_and_max_traffic_below_one_holds() -> None:
    later = T0 + timedelta(days=2)
    assert decide(_state(0.9), [PASS], now=later).action is Action.COMPLETE
    assert decide(_state(0.95, increment_percentage=0.1), [PASS], now=later).traffic == 1.0
    capped = _state(0.5, initial_traffic=0.1, max_traffic=0.5)
    assert decide(capped, [PASS], now=later).action is Action.HOLD


def test_a_canary_holds_until_promoted() -> None:
    state = _state(0.1, Strategy.CANARY)
    decision = decide(state, [PASS], now=T0 + timedelta(days=30))
    assert (decision.action, decision.traffic) == (Action.HOLD, 0.1)


def test_rollout_config_is_validated() -> None:
    with pytest.raises(InvalidInputError):
        RolloutConfig(initial_traffic=0.0)
    with pytest.raises(InvalidInputError):
        RolloutConfig(initial_traffic=0.6, max_traffic=0.5)
    assert RolloutConfig.from_json(RolloutConfig().to_json()) == RolloutConfig()


def test_trigger_names_follow_the_thresholds() -> None:
    assert Guardrails().trigger_names() == [
        "engagement_rate_drop_15_percent",
        "error_rate_above_5_percent",
        "response_time_above_2000ms",
    ]


def _moments(n: int, mean: float, sd: float) -> Moments:
    return Moments(n, n * mean, n * (sd * sd + mean * mean))


def test_engagement_check_is_three_way_on_the_always_valid_interval() -> None:
    limits = Guardrails()
    base = _moments(5000, 0.05, 0.025)
    assert engagement_check(_moments(5000, 0.05, 0.025), base, limits).verdict is Verdict.PASS
    dropped = engagement_check(_moments(5000, 0.035, 0.02), base, limits)
    assert dropped.verdict is Verdict.FAIL and dropped.trigger == limits.trigger_names()[0]
    # A 15 % point estimate on little data is not enough to roll back, nor to advance.
    noisy = engagement_check(_moments(150, 0.0425, 0.025), _moments(150, 0.05, 0.025), limits)
    assert noisy.verdict is Verdict.INCONCLUSIVE
    few = engagement_check(_moments(20, 0.01, 0.01), base, limits)
    assert few.verdict is Verdict.INCONCLUSIVE


def test_error_and_latency_checks_use_absolute_limits_after_enough_generations() -> None:
    limits = Guardrails()
    assert error_rate_check(GenerationHealth(1000, 80, 900.0), limits).verdict is Verdict.FAIL
    assert error_rate_check(GenerationHealth(1000, 20, 900.0), limits).verdict is Verdict.PASS
    assert error_rate_check(GenerationHealth(10, 5, 900.0), limits).verdict is Verdict.INCONCLUSIVE
    assert latency_check(GenerationHealth(1000, 0, 2500.0), limits).verdict is Verdict.FAIL
    assert latency_check(GenerationHealth(1000, 0, 1500.0), limits).verdict is Verdict.PASS
    assert latency_check(GenerationHealth(0, 0, None), limits).verdict is Verdict.INCONCLUSIVE


def test_the_guardrail_checks_say_which_correction_they_used() -> None:
    limits = Guardrails()
    base = _moments(5000, 0.05, 0.025)
    for new in (_moments(5000, 0.05, 0.025), _moments(5000, 0.035, 0.02)):
        result = engagement_check(new, base, limits)
        assert result.correction == "none"  # the only statistical guardrail: a family of one
        assert result.to_json()["correction"] == "none"
    assert error_rate_check(GenerationHealth(1000, 80, 900.0), limits).correction is None
    assert latency_check(GenerationHealth(1000, 0, 2500.0), limits).correction is None
