"""Seeded simulation: CUPED keeps the sequential test's false-positive rate and decides sooner.

    .venv/bin/python -m pytest tests/unit/experiments/stats/test_stats_cuped_simulation.py -q -s
prints the numbers that docs/statistics.md quotes.
"""

from __future__ import annotations

import numpy as np
import pytest
from cuped_simulation import simulate

pytestmark = pytest.mark.slow


def test_cuped_keeps_the_false_positive_rate_at_alpha() -> None:
    outcome = simulate(experiments=300, lift=0.0, seed=1)
    print(
        f"\nA/A, 300 experiments, read every 2 h for 48 h: false positives "
        f"plain {outcome.rate('plain'):.3f}, CUPED {outcome.rate('cuped'):.3f}; "
        f"variance reduction {outcome.variance_reduction:.3f}"
    )
    assert outcome.rate("plain") <= 0.05
    assert outcome.rate("cuped") <= 0.05
    assert 0.2 < outcome.variance_reduction < 0.4


def test_cuped_decides_sooner_on_a_real_lift() -> None:
    outcome = simulate(experiments=150, lift=0.07, seed=2)
    hours = {}
    for which in ("plain", "cuped"):
        first = getattr(outcome, which).astype(float)
        first[first == 0] = np.inf  # never decided within 48 h
        hours[which] = float(np.median(first))
    print(
        f"\n+7% lift, 150 experiments: detected by 48 h plain {outcome.rate('plain'):.3f}, "
        f"CUPED {outcome.rate('cuped'):.3f}; median hours to a decision plain "
        f"{hours['plain']:g}, CUPED {hours['cuped']:g}"
    )
    assert outcome.rate("cuped") > outcome.rate("plain") + 0.05
    assert hours["cuped"] <= 0.8 * hours["plain"]
