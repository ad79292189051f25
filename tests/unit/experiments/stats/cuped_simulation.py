"""A seeded simulation of CUPED's gain for the sequential test (used by the tests and docs).

Each unit has an engagement habit; its engagements in the week before exposure (the
covariate) and after it are Poisson draws around that habit, so pre and post correlate
about 0.65, as repeat behaviour does; a fifth of the units are new (no pre-period: 0).
Units arrive every hour in both arms; the always-valid test is read every ``look_every``
hours, without and with CUPED, through the production functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tuneloop.experiments.stats.cuped import CupedArm, cuped_moments
from tuneloop.experiments.stats.errors import StatsError
from tuneloop.experiments.stats.frequentist import effect_moments
from tuneloop.experiments.stats.moments import mean_stats
from tuneloop.experiments.stats.sequential import sequential_inference


@dataclass(frozen=True)
class Outcome:
    """Per experiment: the first hour each test was significant (0: never)."""

    plain: np.ndarray
    cuped: np.ndarray
    variance_reduction: float

    def rate(self, which: str) -> float:
        return float(np.mean(getattr(self, which) > 0))

    def median_hour(self, which: str) -> float:
        hours = getattr(self, which)
        return float(np.median(hours[hours > 0])) if np.any(hours > 0) else float("nan")


def _hourly_sums(rng: np.random.Generator, n: int, hours: int, lift: float) -> np.ndarray:
    """Cumulative (n, sum, squares, pre sum, pre squares, products) per hour: (hours, 6)."""
    habit = rng.gamma(1.5, 2.0, (hours, n))
    pre = rng.poisson(habit) * (rng.random((hours, n)) > 0.2)
    post = rng.poisson(habit * (1 + lift)).astype(float)
    pre = pre.astype(float)
    per_hour = np.stack(
        [
            np.full(hours, float(n)),
            post.sum(1),
            (post**2).sum(1),
            pre.sum(1),
            (pre**2).sum(1),
            (post * pre).sum(1),
        ],
        axis=1,
    )
    return np.cumsum(per_hour, axis=0)


def _first_significant(
    estimates: list[tuple[float, float] | None], ns: list[int], hours: list[int]
) -> int:
    for moments, n, hour in zip(estimates, ns, hours, strict=True):
        if moments is None:
            continue
        if sequential_inference(moments[0], moments[1], n).significant:
            return hour
    return 0


def simulate(
    *,
    experiments: int,
    lift: float,
    units_per_hour: int = 150,
    hours: int = 48,
    look_every: int = 2,
    seed: int = 14,
) -> Outcome:
    rng = np.random.default_rng(seed)
    plain_hours, cuped_hours, reductions = [], [], []
    looks = list(range(look_every, hours + 1, look_every))
    for _ in range(experiments):
        a = _hourly_sums(rng, units_per_hour, hours, 0.0)
        b = _hourly_sums(rng, units_per_hour, hours, lift)
        plain, adjusted, ns = [], [], []
        for hour in looks:
            ca, cb = (CupedArm(int(s[0]), *map(float, s[1:])) for s in (a[hour - 1], b[hour - 1]))
            moments = effect_moments(
                mean_stats(ca.n, ca.sum, ca.sum_squares),
                mean_stats(cb.n, cb.sum, cb.sum_squares),
                relative=True,
            )
            plain.append(None if isinstance(moments, StatsError) else moments)
            cuped = cuped_moments(ca, cb, relative=True)
            if isinstance(cuped, StatsError):
                adjusted.append(None)
            else:
                adjusted.append((cuped.estimate, cuped.std_error))
                reductions.append(cuped.variance_reduction)
            ns.append(ca.n + cb.n)
        plain_hours.append(_first_significant(plain, ns, looks))
        cuped_hours.append(_first_significant(adjusted, ns, looks))
    return Outcome(
        plain=np.array(plain_hours),
        cuped=np.array(cuped_hours),
        variance_reduction=float(np.mean(reductions)),
    )
