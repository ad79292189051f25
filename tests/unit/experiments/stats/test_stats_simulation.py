"""Seeded simulations: hourly peeking at A/A tests (false positives) and at a real lift (power).

Every experiment is read every hour, and "significant at any look" counts as a decision,
which is what a dashboard refreshed hourly invites. The numbers run through the same array
functions that ``t_test`` and ``sequential_test`` call. Run with ``-s`` to see them:

    .venv/bin/python -m pytest tests/unit/experiments/stats/test_stats_simulation.py -q -s
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from tuneloop.experiments.stats.frequentist import (
    difference_estimate,
    difference_variance,
    t_p_value,
    welch_dof,
)
from tuneloop.experiments.stats.moments import ArmStats, proportion_variance, sample_mean
from tuneloop.experiments.stats.power import Design, power, unit_variance
from tuneloop.experiments.stats.sequential import (
    p_value_one_sided,
    p_value_two_sided,
    sequential_rho,
)

ALPHA = 0.05
TUNING = 5000.0


@dataclass(frozen=True)
class Looks:
    """p-values and estimates at every hourly look: arrays of (experiments, hours)."""

    estimate: np.ndarray
    fixed: np.ndarray
    sequential: np.ndarray
    sequential_greater: np.ndarray


def peek_hourly(
    seed: int,
    *,
    experiments: int,
    hours: int,
    per_hour: int,
    p_control: float,
    p_treatment: float,
    relative: bool = True,
) -> Looks:
    """Engagement (a proportion) per arm, accumulated hour by hour, tested at every hour."""
    rng = np.random.default_rng(seed)
    hourly = rng.binomial(per_hour, [p_control, p_treatment], size=(experiments, hours, 2))
    successes = hourly.cumsum(axis=1)
    n = np.broadcast_to(per_hour * np.arange(1, hours + 1), successes.shape[:2])
    s_a, s_b = successes[..., 0], successes[..., 1]
    # an arm without a single engagement is a BASELINE_ZERO / ZERO_VARIANCE result: no decision
    usable = (s_a > 0) & (s_b > 0)
    s_a, s_b = np.where(usable, s_a, 1), np.where(usable, s_b, 1)
    mean_a, mean_b = sample_mean(n, s_a), sample_mean(n, s_b)
    var_a, var_b = proportion_variance(n, s_a), proportion_variance(n, s_b)
    estimate = difference_estimate(mean_a, mean_b, relative=relative)
    se = np.sqrt(difference_variance(mean_a, var_a, n, mean_b, var_b, n, relative=relative))
    fixed = t_p_value(estimate / se, welch_dof(var_a, n, var_b, n), "two-sided")
    sequential = p_value_two_sided(estimate, se, 2 * n, rho=sequential_rho(ALPHA, TUNING))
    greater = p_value_one_sided(
        estimate,
        se,
        2 * n,
        rho=sequential_rho(ALPHA, TUNING, two_sided=False),
        alternative="greater",
    )
    never = np.ones_like(fixed)
    return Looks(
        estimate=estimate,
        fixed=np.where(usable, fixed, never),
        sequential=np.where(usable, sequential, never),
        sequential_greater=np.where(usable, greater, never),
    )


def rate(rejected: np.ndarray) -> float:
    return float(rejected.mean())


def monte_carlo_se(p: float, runs: int) -> float:
    return math.sqrt(p * (1 - p) / runs)


def test_hourly_peeking_inflates_the_fixed_test_but_not_the_sequential_one() -> None:
    runs, hours = 2000, 48
    looks = peek_hourly(
        20240601, experiments=runs, hours=hours, per_hour=200, p_control=0.05, p_treatment=0.05
    )
    fixed_any = rate((looks.fixed <= ALPHA).any(axis=1))
    fixed_last = rate(looks.fixed[:, -1] <= ALPHA)
    sequential_any = rate((looks.sequential <= ALPHA).any(axis=1))
    greater_any = rate((looks.sequential_greater <= ALPHA).any(axis=1))
    after_burn_in = rate((looks.sequential[:, 4:] <= ALPHA).any(axis=1))  # from 1000 units/arm
    print(
        f"\nA/A, {runs} experiments x {hours} hourly looks, 200 users/arm/hour, p = 0.05: "
        f"false-positive rate fixed (any look) {fixed_any:.3f}, fixed (last look only) "
        f"{fixed_last:.3f}, sequential two-sided {sequential_any:.3f} "
        f"({after_burn_in:.3f} from hour 5), sequential one-sided {greater_any:.3f} (alpha {ALPHA})"
    )
    slack = 3 * monte_carlo_se(ALPHA, runs)
    assert abs(fixed_last - ALPHA) < slack  # read once, the fixed test is calibrated ...
    assert fixed_any > ALPHA + 10 * monte_carlo_se(ALPHA, runs)  # ... peeked at, it is not
    assert sequential_any <= ALPHA + slack
    # the first looks (~10 engagements an arm) are the asymptotic interval's weak spot
    assert after_burn_in < ALPHA - 2 * monte_carlo_se(ALPHA, runs)
    assert greater_any <= ALPHA + slack


def test_the_sequential_test_detects_a_real_lift_most_of_the_time() -> None:
    runs, hours, p_a, lift = 1000, 48, 0.05, 0.25
    looks = peek_hourly(
        7, experiments=runs, hours=hours, per_hour=300, p_control=p_a, p_treatment=p_a * (1 + lift)
    )
    wins = (looks.sequential <= ALPHA) & (looks.estimate > 0)
    detected = rate(wins.any(axis=1))
    first_hour = np.median(np.where(wins.any(axis=1), wins.argmax(axis=1) + 1, hours))
    fixed_final = rate((looks.fixed[:, -1] <= ALPHA) & (looks.estimate[:, -1] > 0))
    wrong_way = rate(((looks.sequential <= ALPHA) & (looks.estimate < 0)).any(axis=1))
    print(
        f"\nA/B, +{lift:.0%} relative lift on p = {p_a}, 300 users/arm/hour, {runs} x {hours} "
        f"looks: sequential detects {detected:.3f} (median first hour {first_hour:.0f}), "
        f"fixed test read once at the end {fixed_final:.3f}, wrong-direction wins {wrong_way:.3f}"
    )
    assert detected >= 0.8
    assert detected <= fixed_final  # the safety against peeking costs some power
    assert wrong_way < ALPHA / 2  # a sign error is at most the lower tail's share of alpha


def test_power_predictions_match_the_simulated_power() -> None:
    runs, hours, per_hour, p_a, lift = 2000, 48, 200, 0.05, 0.01
    looks = peek_hourly(
        11,
        experiments=runs,
        hours=hours,
        per_hour=per_hour,
        p_control=p_a,
        p_treatment=p_a + lift,
        relative=False,
    )
    fixed_final = rate((looks.fixed[:, -1] <= ALPHA) & (looks.estimate[:, -1] > 0))
    detected = rate(((looks.sequential <= ALPHA) & (looks.estimate > 0)).any(axis=1))

    n_total = 2 * per_hour * hours
    control = ArmStats(n=0, mean=p_a, variance=p_a * (1 - p_a))
    s2 = unit_variance(control, effect=lift, difference="absolute", proportion=True)
    se = math.sqrt(s2 / n_total)
    predicted_fixed = power(lift, std_error=se, n=n_total)
    predicted_sequential = power(lift, std_error=se, n=n_total, design=Design(method="sequential"))
    print(
        f"\nA/B, +{lift} absolute on p = {p_a}: fixed power simulated {fixed_final:.3f} vs "
        f"predicted {predicted_fixed:.3f}; sequential simulated {detected:.3f} vs "
        f"lower bound {predicted_sequential:.3f}"
    )
    # exact (up to Monte Carlo error) for the fixed test, a lower bound for the sequential one
    assert fixed_final == pytest.approx(
        predicted_fixed, abs=3 * monte_carlo_se(predicted_fixed, runs)
    )
    assert detected >= predicted_sequential - 3 * monte_carlo_se(predicted_sequential, runs)
