"""The permanent holdout: which units stay on the reference model for good (pure).

A unit is in the holdout when its bucket for ``holdout:<tenant>`` is below
``experiments.holdout_share``. The bucket is the experiments' hash (``assignment.bucket``)
under its own key, so membership is sticky (a function of tenant and unit alone),
independent of every experiment's and rollout's buckets, and the same in every process.
Raising the share only adds units; lowering it releases some back to everyone else.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from tuneloop.experiments.assignment import bucket, buckets

HOLDOUT = "holdout"  # the route source and arm of holdout units
EVERYONE_ELSE = "everyone_else"


def holdout_key(tenant_id: str) -> str:
    return f"{HOLDOUT}:{tenant_id}"


def in_holdout(tenant_id: str, unit_id: str, share: float) -> bool:
    """Whether ``unit_id`` of ``tenant_id`` is served the reference model for good."""
    return share > 0 and bucket(holdout_key(tenant_id), unit_id) < share


def holdout_mask(tenant_id: str, unit_ids: Iterable[str], share: float) -> np.ndarray:
    """``in_holdout`` for many units at once (a boolean array, for the report)."""
    mask: np.ndarray = buckets(holdout_key(tenant_id), unit_ids) < share
    return mask
