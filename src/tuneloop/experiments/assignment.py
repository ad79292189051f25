"""Deterministic, sticky assignment of units to experiment arms by hashing (pure, no storage).

A unit's *bucket* is a number in [0, 1) computed from ``(experiment key, unit id)`` alone:

    seed   = XXH3-64(utf8(experiment_key))
    h      = XXH3-64(utf8(unit_id), seed)
    bucket = (h >> 11) / 2**53            # the top 53 bits: exact in a double

Any process, on any machine, in any release, computes the same bucket (Python's ``hash()``
is salted per process and is never used). Another language reproduces it with any XXH3
library that takes a seed; ``tests/unit/experiments/test_assignment.py`` pins known values.

Arms and how they grow (docs/decisions/0006-assignment-and-events.md). Arm 0 is the
baseline; the other ``K - 1`` arms each own a *fixed slot* of width ``1 / (K - 1)``, and
arm ``j`` takes ``[start_j, start_j + weight_j)`` from the start of its slot. The baseline
takes everything left over. So, as long as the number of arms stays the same:

- an arm that grows keeps every unit it had and gains units only from the baseline;
- an arm that shrinks gives units back only to the baseline;
- units never move from one non-baseline arm to another.

With two arms this is the rollout case: the candidate is ``[0, share)``, and raising the
share from 10% to 20% keeps the first 10% where they were. The price is that a non-baseline
arm can hold at most ``1 / (K - 1)`` of the traffic (any share with two arms, half with
three). Adding or removing an arm changes the slots and reshuffles units: start a new
experiment (a new key) for that.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import xxhash

from tuneloop.errors import InvalidInputError

_SCALE = 2.0**-53
_TOLERANCE = 1e-9
_xxh3 = xxhash.xxh3_64_intdigest


def key_seed(experiment_key: str) -> int:
    """The 64-bit seed that makes each experiment's randomisation independent of the others."""
    return _xxh3(experiment_key.encode())


def bucket(experiment_key: str, unit_id: str) -> float:
    """The unit's position in [0, 1) for this experiment; the same everywhere, forever."""
    return (_xxh3(unit_id.encode(), key_seed(experiment_key)) >> 11) * _SCALE


def buckets(experiment_key: str, unit_ids: Iterable[str]) -> np.ndarray:
    """Buckets of many units at once, as a float64 array (for tests and simulations)."""
    seed = key_seed(experiment_key)
    hashes = np.fromiter((_xxh3(unit.encode(), seed) for unit in unit_ids), dtype=np.uint64)
    return (hashes >> np.uint64(11)).astype(np.float64) * _SCALE


@dataclass(frozen=True)
class Segment:
    """A half-open range of buckets ``[start, end)`` and the arm that owns it."""

    start: float
    end: float
    arm: str


def segments(arms: Sequence[tuple[str, float]]) -> list[Segment]:
    """Lay arms ``(name, weight)`` on [0, 1): arm 0 is the baseline, the rest own fixed slots."""
    _validate(arms)
    if len(arms) == 1:
        return [Segment(0.0, 1.0, arms[0][0])]
    baseline = arms[0][0]
    width = 1.0 / (len(arms) - 1)
    laid: list[Segment] = []
    for index, (name, weight) in enumerate(arms[1:]):
        start = index * width
        end = 1.0 if index == len(arms) - 2 else (index + 1) * width
        split = min(start + weight, end)
        laid.append(Segment(start, split, name))
        laid.append(Segment(split, end, baseline))
    return [segment for segment in laid if segment.end > segment.start]


def _validate(arms: Sequence[tuple[str, float]]) -> None:
    if not arms:
        raise InvalidInputError("an experiment needs at least one arm")
    names = [name for name, _ in arms]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"arm names must be unique, got {names}")
    weights = [weight for _, weight in arms]
    if any(not 0.0 <= weight <= 1.0 for weight in weights):
        raise InvalidInputError(f"arm weights must lie in [0, 1], got {weights}")
    if abs(sum(weights) - 1.0) > _TOLERANCE:
        raise InvalidInputError(f"arm weights must add up to 1, got {sum(weights):.6f}")
    if len(arms) > 2:
        limit = 1.0 / (len(arms) - 1)
        too_big = [name for name, weight in arms[1:] if weight > limit + _TOLERANCE]
        if too_big:
            raise InvalidInputError(
                f"with {len(arms)} arms a non-baseline arm can take at most {limit:.4f} of the "
                f"traffic (its slot), so that growing it never moves other units; "
                f"too big: {too_big}"
            )


class Assigner:
    """Assigns units of one experiment to its arms; build once, call ``assign`` per request."""

    __slots__ = ("_bounds", "_names", "_seed", "experiment_key")

    def __init__(self, experiment_key: str, arms: Sequence[tuple[str, float]]) -> None:
        laid = segments(arms)
        self.experiment_key = experiment_key
        self._seed = key_seed(experiment_key)
        # bisect_right over the segment ends finds the segment holding a bucket.
        self._bounds = [segment.end for segment in laid[:-1]]
        self._names = [segment.arm for segment in laid]

    def assign(self, unit_id: str) -> str:
        position = (_xxh3(unit_id.encode(), self._seed) >> 11) * _SCALE
        return self._names[bisect_right(self._bounds, position)]

    def assign_many(self, unit_ids: Iterable[str]) -> list[str]:
        positions = buckets(self.experiment_key, unit_ids)
        indexes = np.searchsorted(np.asarray(self._bounds), positions, side="right")
        return [self._names[index] for index in indexes]


def assign(experiment_key: str, unit_id: str, arms: Sequence[tuple[str, float]]) -> str:
    """The arm of one unit; the arm layout is cached per (experiment, arms)."""
    return _assigner(experiment_key, tuple((name, float(weight)) for name, weight in arms)).assign(
        unit_id
    )


@lru_cache(maxsize=256)
def _assigner(experiment_key: str, arms: tuple[tuple[str, float], ...]) -> Assigner:
    return Assigner(experiment_key, arms)
