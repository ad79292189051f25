"""Standardised effect sizes (Cohen's d for means, Cohen's h for proportions) and their label.

The label is what the evaluation API reports as ``effect_size``: Cohen's conventional cut
points, 0.5 for "medium" and 0.8 for "large"; everything below is "small" (the API has no
"negligible"). Engagement-rate lifts of a few percent are "small" by this scale, honestly so.
"""

from __future__ import annotations

import math
from typing import Literal

from tuneloop.experiments.stats.moments import ArmStats

EffectSizeLabel = Literal["small", "medium", "large"]

MEDIUM = 0.5
LARGE = 0.8


def cohens_d(control: ArmStats, treatment: ArmStats) -> float | None:
    """(m_b - m_a) / pooled standard deviation; None without two units per arm or variance."""
    if control.n < 2 or treatment.n < 2:
        return None
    pooled = ((control.n - 1) * control.variance + (treatment.n - 1) * treatment.variance) / (
        control.n + treatment.n - 2
    )
    if pooled <= 0:
        return None
    return (treatment.mean - control.mean) / math.sqrt(pooled)


def cohens_h(p_control: float, p_treatment: float) -> float | None:
    """2·asin(√p_b) - 2·asin(√p_a), the variance-stabilised difference of two proportions."""
    if not (0 <= p_control <= 1 and 0 <= p_treatment <= 1):
        return None
    return 2 * math.asin(math.sqrt(p_treatment)) - 2 * math.asin(math.sqrt(p_control))


def standardized_effect(
    control: ArmStats, treatment: ArmStats, *, proportion: bool
) -> float | None:
    """Cohen's h for a proportion metric, Cohen's d otherwise."""
    if proportion:
        if control.n == 0 or treatment.n == 0:
            return None
        return cohens_h(control.mean, treatment.mean)
    return cohens_d(control, treatment)


def effect_size_label(effect: float) -> EffectSizeLabel:
    """Cohen's small / medium / large for the size (not the sign) of a standardised effect."""
    size = abs(effect)
    if size >= LARGE:
        return "large"
    if size >= MEDIUM:
        return "medium"
    return "small"
