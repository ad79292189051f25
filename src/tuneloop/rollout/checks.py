"""Rollout guardrails: SQL aggregates of the new and previous model, judged against limits.

- engagement (the whole deployment so far): the always-valid interval of the relative
  difference new vs previous (the experiments' sequential test, safe to read every tick)
  fails when its upper end is below ``-max_engagement_drop`` (a drop of at least that much
  is established), passes when its lower end is above it (such a drop is ruled out), and
  is inconclusive in between or below ``min_units`` units per model;
- error rate and p95 latency (the current step): the new model's own values against the
  absolute limits, once it has ``min_generations`` generations in the step.

``evaluate`` is pure; ``gather`` reads the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from tuneloop.domain.experiments import Moments
from tuneloop.experiments.stats.moments import mean_stats
from tuneloop.experiments.stats.sequential import sequential_test
from tuneloop.rollout.policy import CheckResult, Guardrails, Verdict
from tuneloop.store.deployment_models import Deployment
from tuneloop.store.deployments import GenerationHealth, engagement_moments, generation_health


def model_label(model_id: str, version: str) -> str:
    """What routing hands out and events carry in ``model_id``: ``MODEL@VERSION``."""
    return f"{model_id}@{version}"


@dataclass(frozen=True)
class Observations:
    """What a tick knows: engagement of both models since the start, health in the step."""

    new_engagement: Moments
    old_engagement: Moments
    new_health: GenerationHealth


def gather(engine: Engine, deployment: Deployment, *, now: datetime) -> Observations:
    new = model_label(deployment.model_id, deployment.version)
    old = model_label(deployment.previous_model_id, deployment.previous_version)
    moments = engagement_moments(
        engine, deployment.tenant_id, [new, old], start=deployment.created_at, end=now
    )
    health = generation_health(
        engine, deployment.tenant_id, new, start=deployment.step_started_at, end=now
    )
    return Observations(moments[new], moments[old], health)


# The engagement test is the only statistical guardrail of a rollout (error rate and latency
# are thresholds), so its family has one member and needs no correction.
ONE_TEST = "none"


def evaluate(seen: Observations, limits: Guardrails) -> list[CheckResult]:
    return [
        engagement_check(seen.new_engagement, seen.old_engagement, limits),
        error_rate_check(seen.new_health, limits),
        latency_check(seen.new_health, limits),
    ]


def engagement_check(new: Moments, old: Moments, limits: Guardrails) -> CheckResult:
    name, trigger = "engagement", limits.trigger_names()[0]
    drop = limits.max_engagement_drop
    if min(new.n, old.n) < limits.min_units:
        return CheckResult(
            name,
            Verdict.INCONCLUSIVE,
            f"engagement: {new.n} / {old.n} units (new / previous), {limits.min_units} needed each",
            observed={"units_new": new.n, "units_previous": old.n},
        )
    result = sequential_test(
        mean_stats(old.n, old.sum, old.sum_squares),
        mean_stats(new.n, new.sum, new.sum_squares),
        difference="relative",
        alpha=limits.alpha,
    )
    low, high = result.ci if result.ci is not None else (None, None)
    observed = {"units_new": new.n, "units_previous": old.n, "lift": result.estimate}
    observed |= {"ci_low": low, "ci_high": high}
    if result.error is not None or low is None or high is None:
        return CheckResult(
            name,
            Verdict.INCONCLUSIVE,
            f"engagement: {result.error}",
            observed=observed,
            correction=ONE_TEST,
        )
    interval = f"lift {result.estimate:+.1%}, always-valid CI [{low:+.1%}, {high:+.1%}]"
    if high < -drop:
        return CheckResult(
            name,
            Verdict.FAIL,
            f"engagement dropped {drop:.0%} or more: {interval}",
            trigger,
            observed,
            ONE_TEST,
        )
    if low > -drop:
        return CheckResult(
            name, Verdict.PASS, f"no {drop:.0%} drop: {interval}", None, observed, ONE_TEST
        )
    return CheckResult(
        name,
        Verdict.INCONCLUSIVE,
        f"engagement: a {drop:.0%} drop not ruled out: {interval}",
        None,
        observed,
        ONE_TEST,
    )


def error_rate_check(health: GenerationHealth, limits: Guardrails) -> CheckResult:
    name, trigger = "error_rate", limits.trigger_names()[1]
    observed = {"generations": health.generations, "error_rate": health.error_rate}
    rate = health.error_rate
    if rate is None or health.generations < limits.min_generations:
        return CheckResult(
            name,
            Verdict.INCONCLUSIVE,
            f"error rate: {health.generations} generations in this step, "
            f"{limits.min_generations} needed",
            observed=observed,
        )
    text = f"error rate {rate:.1%} over {health.generations} generations"
    if rate > limits.max_error_rate:
        return CheckResult(
            name, Verdict.FAIL, f"{text} is above {limits.max_error_rate:.0%}", trigger, observed
        )
    return CheckResult(name, Verdict.PASS, text, None, observed)


def latency_check(health: GenerationHealth, limits: Guardrails) -> CheckResult:
    name, trigger = "latency_p95", limits.trigger_names()[2]
    p95 = health.p95_latency_ms
    observed = {"generations": health.generations, "p95_latency_ms": p95}
    if p95 is None or health.generations < limits.min_generations:
        return CheckResult(
            name,
            Verdict.INCONCLUSIVE,
            f"latency: {health.generations} generations in this step, "
            f"{limits.min_generations} needed",
            observed=observed,
        )
    text = f"p95 latency {p95:.0f} ms"
    if p95 > limits.max_p95_latency_ms:
        limit = limits.max_p95_latency_ms
        return CheckResult(name, Verdict.FAIL, f"{text} is above {limit:.0f} ms", trigger, observed)
    return CheckResult(name, Verdict.PASS, text, None, observed)
