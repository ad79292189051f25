"""Small terminal charts: a sparkline of a loss curve."""

from __future__ import annotations

from collections.abc import Sequence

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], *, width: int = 60) -> str:
    """Values resampled to ``width`` buckets (bucket means), drawn with eight bar heights."""
    if not values:
        return ""
    if len(values) > width:
        size = len(values) / width
        values = [
            sum(chunk) / len(chunk)
            for chunk in (
                values[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)]
                for i in range(width)
            )
        ]
    low, high = min(values), max(values)
    span = high - low or 1.0
    return "".join(
        BARS[min(int((v - low) / span * (len(BARS) - 1) + 0.5), len(BARS) - 1)] for v in values
    )


def ends(values: Sequence[float], *, share: float = 0.1) -> tuple[float, float]:
    """Mean of the first and of the last ``share`` of a noisy series (per-step losses)."""
    k = max(1, int(len(values) * share))
    return sum(values[:k]) / k, sum(values[-k:]) / k
