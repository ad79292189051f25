"""Ratio-metric sums and the CUPED pre-period, computed in SQL (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from tuneloop.domain.experiments import ArmSpec
from tuneloop.events.ingest import ingest_events
from tuneloop.experiments.service import create_experiment
from tuneloop.store.experiment_statistics import arm_statistics
from tuneloop.synthetic.traffic import TrafficSpec, generate_traffic

KEY = "ab-test-20261205-014"
ARMS = [ArmSpec("baseline", "gpt-4o-mini", "1", 0.5), ArmSpec("candidate", "ft:x", "2", 0.5)]


def events() -> tuple[list[dict[str, Any]], Any]:
    """Experiment traffic, plus outcome events before some units' exposure (no experiment),
    one of them older than the pre-period's start, and one after exposure outside it."""
    spec = TrafficSpec(
        KEY, [(a.name, a.weight) for a in ARMS], units=300, seed=3, posts_per_unit=2,
        error_rate=0.1, lift=0.2, chunk_units=100,
    )  # fmt: skip
    traffic = [event for chunk in generate_traffic(spec) for event in chunk]
    exposures = {e["unit_id"]: e["ts"] for e in traffic if e["kind"] == "exposure"}
    since = min(exposures.values()) - timedelta(days=7)
    rng = np.random.default_rng(4)
    extra = []
    for index, (unit, ts) in enumerate(sorted(exposures.items())):
        if index % 3 == 0:
            continue  # a new unit: no history
        for k in range(1 + index % 3):
            extra.append(_outcome(f"pre-{unit}-{k}", unit, ts - timedelta(hours=k + 1), rng))
        extra.append(_outcome(f"after-{unit}", unit, ts + timedelta(hours=3), rng))
        if index % 5 == 0:
            extra.append(_outcome(f"old-{unit}", unit, since - timedelta(hours=1), rng))
    return traffic + extra, since


def _outcome(key: str, unit: str, ts: Any, rng: np.random.Generator) -> dict[str, Any]:
    engagement = float(rng.gamma(2.0, 0.02))
    return {"idempotency_key": key, "kind": "outcome", "unit_id": unit, "engagement": engagement,
            "ts": ts}  # fmt: skip


def expected(all_events: list[dict[str, Any]], since: Any) -> dict[str, dict[str, Any]]:
    """The same reduction as store.events, in Python and numpy."""
    mine = [e for e in all_events if e.get("experiment_key") == KEY]
    exposure = {e["unit_id"]: e["ts"] for e in mine if e["kind"] == "exposure"}
    arm_of = {e["unit_id"]: e["arm"] for e in mine}
    per_unit: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in mine:
        per_unit[e["unit_id"]].append(e)
    out: dict[str, dict[str, list[tuple[float, ...]]]] = defaultdict(lambda: defaultdict(list))
    for unit, seen in per_unit.items():
        outcomes = [e["engagement"] for e in seen if e["kind"] == "outcome"]
        generations = [e for e in seen if e["kind"] == "generation"]
        arm = arm_of[unit]
        if outcomes:
            out[arm]["engagement_per_post"].append((sum(outcomes), float(len(outcomes))))
            pre = [
                e["engagement"]
                for e in all_events
                if e["unit_id"] == unit and e["kind"] == "outcome"
                and since <= e["ts"] < exposure[unit]
            ]  # fmt: skip
            out[arm]["ratio_pre"].append(
                (sum(outcomes), float(len(outcomes)), float(sum(pre)), float(len(pre)))
            )
            out[arm]["pre"].append((float(np.mean(outcomes)), float(np.mean(pre)) if pre else 0.0,
                                    1.0 if pre else 0.0))  # fmt: skip
        if generations:
            cost = sum(e["cost"] for e in generations)
            out[arm]["cost_per_token"].append((cost, float(sum(e["tokens"] for e in generations))))
    return out


def test_ratio_sums_and_pre_period_match_numpy(engine: Engine) -> None:
    create_experiment(engine, "acme", arms=ARMS, key=KEY)
    all_events, since = events()
    report = ingest_events(engine, "acme", all_events)
    assert report.rejected == 0, report.problems[:3]
    want = expected(all_events, since)
    found = {s.arm: s for s in arm_statistics(engine, "acme", KEY, pre_period_since=since)}
    for arm in ("baseline", "candidate"):
        for metric in ("engagement_per_post", "cost_per_token"):
            m, d = (np.array(column) for column in zip(*want[arm][metric], strict=True))
            ratio = found[arm].ratios[metric]
            assert ratio.n == len(m)
            got = (
                ratio.numerator_sum,
                ratio.numerator_sum_squares,
                ratio.denominator_sum,
                ratio.denominator_sum_squares,
                ratio.numerator_denominator_sum_products,
            )
            want_sums = (m.sum(), (m**2).sum(), d.sum(), (d**2).sum(), (m * d).sum())
            assert got == pytest.approx(want_sums, rel=1e-9)
        post, pre, has = (np.array(c) for c in zip(*want[arm]["pre"], strict=True))
        period = found[arm].pre_period["engagement"]
        assert period.units_with_data == int(has.sum()) > 0
        assert (period.pre_sum, period.pre_sum_squares, period.post_pre_sum_products) == (
            pytest.approx(((pre.sum()), (pre**2).sum(), (post * pre).sum()), rel=1e-9)
        )
        assert found[arm].metrics["engagement"].n == len(post)
        m, d, m0, d0 = (np.array(c) for c in zip(*want[arm]["ratio_pre"], strict=True))
        ratio_pre = found[arm].ratio_pre_period["engagement_per_post"]
        assert ratio_pre.units_with_data == int((d0 > 0).sum())
        sums = (m0, m0 * m0, d0, d0 * d0, m * m0, d * d0, m0 * d0, m * d0, m0 * d)
        got = (
            ratio_pre.pre_numerator_sum,
            ratio_pre.pre_numerator_sum_squares,
            ratio_pre.pre_denominator_sum,
            ratio_pre.pre_denominator_sum_squares,
            ratio_pre.numerator_pre_numerator_sum_products,
            ratio_pre.denominator_pre_denominator_sum_products,
            ratio_pre.pre_numerator_pre_denominator_sum_products,
            ratio_pre.numerator_pre_denominator_sum_products,
            ratio_pre.pre_numerator_denominator_sum_products,
        )
        assert got == pytest.approx(tuple(x.sum() for x in sums), rel=1e-9)
