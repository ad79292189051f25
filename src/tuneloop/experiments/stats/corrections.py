"""Multiple-testing corrections of p-values: Holm-Bonferroni and Benjamini-Hochberg.

As GrowthBook applies them (``adjustPValuesHolmBonferroni`` and
``adjustPValuesBenjaminiHochberg`` in its back end's ``services/experiments.ts``): over
every p-value of the family at once (each treatment arm against the control, each metric),
Holm multiplies the k-th smallest of m by (m - k + 1) and makes the sequence non-decreasing
(family-wise error rate); Benjamini-Hochberg multiplies the k-th smallest by m / k and makes
it non-increasing from the largest (false discovery rate). Both cap at 1. A missing p-value
(an error, a Bayesian result) is left out of the family and stays None.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Correction = Literal["none", "holm-bonferroni", "benjamini-hochberg"]


def holm_bonferroni(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(p_values[index] * (m - rank), 1.0))
        adjusted[index] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg step-up adjusted p-values (FDR), in the input's order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for rank, index in enumerate(order):
        running = min(running, min(p_values[index] * m / (m - rank), 1.0))
        adjusted[index] = running
    return adjusted


def adjust(p_values: Sequence[float | None], correction: Correction) -> list[float | None]:
    """The adjusted p-values of a family (None where there is no p-value)."""
    present = [i for i, p in enumerate(p_values) if p is not None]
    if correction == "none" or not present:
        return [None] * len(p_values)
    values = [float(p_values[i]) for i in present]  # type: ignore[arg-type]
    method = holm_bonferroni if correction == "holm-bonferroni" else benjamini_hochberg
    out: list[float | None] = [None] * len(p_values)
    for i, p in zip(present, method(values), strict=True):
        out[i] = p
    return out
