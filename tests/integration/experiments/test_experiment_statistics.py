"""Experiments on real event data: ratio metrics, CUPED from the pre-period, Bayesian engine."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine
from statsmodels.stats.multitest import multipletests

from tuneloop.domain.experiments import SuccessCriteria
from tuneloop.events.ingest import ingest_events
from tuneloop.experiments import service
from tuneloop.experiments.service import ModelRef, two_arms
from tuneloop.synthetic.traffic import TrafficSpec, generate_traffic

ARMS = two_arms(ModelRef("gpt-4o-mini", "1"), ModelRef("ft:gpt-4o-mini:acme::7", "2"), 0.5)


def traffic(key: str, *, history: bool, seed: int = 21) -> list[dict[str, Any]]:
    """Synthetic experiment traffic (+40 % engagement, -30 % cost per token) and, with
    ``history``, each unit's engagement in the days before its exposure, tracking its own
    later engagement as real habits do (the CUPED covariate), without the candidate's lift
    (the history predates the exposure)."""
    spec = TrafficSpec(
        key,
        [("baseline", 0.5), ("candidate", 0.5)],
        units=2400,
        lift=0.4,
        cost_change=-0.3,
        seed=seed,
    )
    events = [e for chunk in generate_traffic(spec) for e in chunk]
    if not history:
        return events
    rng = np.random.default_rng(seed)
    per_unit: dict[str, list[float]] = defaultdict(list)
    exposed, lifted = {}, set()
    for e in events:
        if e["kind"] == "exposure" and e["arm"] == "candidate":
            lifted.add(e["unit_id"])
        if e["kind"] == "outcome":
            per_unit[e["unit_id"]].append(e["engagement"])
        if e["kind"] == "exposure":
            exposed[e["unit_id"]] = e["ts"]
    for unit, values in per_unit.items():
        habit = float(np.mean(values)) / (1.4 if unit in lifted else 1.0)
        for k in range(2):
            events.append(
                {
                    "idempotency_key": f"history-{unit}-{k}",
                    "kind": "outcome",
                    "unit_id": unit,
                    "engagement": max(habit * float(rng.normal(1.0, 0.15)), 0.0),
                    "ts": exposed[unit] - timedelta(days=1 + k),
                }
            )
    return events


def run(engine: Engine, *, history: bool, **criteria: Any) -> Any:
    row = service.create_experiment(
        engine, "acme", arms=ARMS, duration_hours=24, success_criteria=SuccessCriteria(**criteria)
    )
    report = ingest_events(engine, "acme", traffic(row.key, history=history))
    assert report.rejected == 0, report.problems[:3]
    analysis = service.analyze_experiment(engine, "acme", row.key)
    service.stop_experiment(engine, "acme", row.key)  # one running test per pair of models
    return analysis


def test_ratio_metrics_and_cuped_come_from_the_events(engine: Engine) -> None:
    plain = run(engine, history=False)
    adjusted = run(engine, history=True)
    cost = adjusted.analyses["cost_per_token"]
    assert cost.metric == "ratio"
    assert cost.comparisons[0].estimate == pytest.approx(-0.3, abs=0.03)
    for metric in ("engagement", "engagement_per_post"):  # CUPED keeps the effect
        assert adjusted.analyses[metric].comparisons[0].estimate == pytest.approx(0.4, abs=0.1)
    assert plain.analyses["engagement"].comparisons[0].cuped is None
    assert plain.analyses["engagement_per_post"].comparisons[0].cuped is None
    per_post = adjusted.analyses["engagement_per_post"].comparisons[0].cuped
    assert per_post is not None and per_post.error is None and per_post.variance_reduction > 0.3
    cuped = adjusted.analyses["engagement"].comparisons[0].cuped
    assert cuped is not None and cuped.theta > 0.5 and cuped.variance_reduction > 0.5
    with_cuped = adjusted.analyses["engagement"].comparisons[0].std_error
    without = plain.analyses["engagement"].comparisons[0].std_error
    assert with_cuped < 0.7 * without
    documented = adjusted.to_json()["statistical_analysis"]
    assert documented["cuped"]["theta"] == pytest.approx(cuped.theta)
    assert documented["stats_engine"] == "frequentist" and documented["p_value"] is not None


def test_the_bayesian_engine_decides_on_chance_to_win_and_risk(engine: Engine) -> None:
    # 97.5 %: as strict as a two-sided 5 % test (at 95 % a +2 % latency drift vetoes here)
    analysis = run(engine, history=False, stats_engine="bayesian", min_chance_to_win=0.975)
    comparison = analysis.analyses["engagement"].comparisons[0]
    assert comparison.p_value is None
    assert comparison.chance_to_win is not None and comparison.chance_to_win > 0.99
    assert analysis.recommendation == "promote", analysis.reasons
    assert any("chance to win" in reason for reason in analysis.reasons)
    documented = analysis.to_json()["statistical_analysis"]
    assert documented["stats_engine"] == "bayesian"
    assert documented["chance_to_win"] == pytest.approx(comparison.chance_to_win)


def test_a_correction_adjusts_the_guardrails_as_one_family(engine: Engine) -> None:
    analysis = run(engine, history=False, correction="holm-bonferroni")
    family = [analysis.analyses[m].comparisons[0] for m in ("error_rate", "latency_ms")]
    raw = [c.p_value for c in family]
    expected = multipletests(raw, method="holm")[1]
    assert [c.adjusted_p_value for c in family] == pytest.approx(list(expected), rel=1e-12)
    assert analysis.to_json()["statistical_analysis"]["correction"] == "holm-bonferroni"
