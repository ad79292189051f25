"""Which model version wrote a dataset's examples, and the cap on any one version's share.

The loop trains on posts its own models wrote. Left alone, the version serving most
traffic writes most of the next dataset, and the next model learns mostly from its
predecessor. The share of examples per source version is reported with every dataset,
and ``dataset.max_share_per_model`` caps it: an over-represented version loses its
lowest-engagement posts until its share is within the cap. Posts of unknown origin
(``source_model`` NULL: written by people, or imported without a model reference) are
never capped; they are what the cap makes room for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

UNKNOWN = "unknown"  # the key of posts of unknown origin


def source_key(source_model: str | None, source_version: str | None) -> str:
    """``MODEL@VERSION`` (the label routing hands out), or ``unknown``."""
    if not source_model:
        return UNKNOWN
    return f"{source_model}@{source_version}" if source_version else source_model


def cap_quotas(counts: Mapping[str, int], max_share: float) -> dict[str, int]:
    """How many posts each source version may keep so that none passes ``max_share``.

    The largest keepable total K solves K = unknown + Σ min(count_v, ⌊max_share·K⌋): a
    version at the cap keeps ⌊max_share·K⌋ posts, the others keep all of theirs. Starting
    from K = all posts, each step can only lower K, so the iteration stops at the largest
    fixed point (a few steps). With no posts of unknown origin and a cap below 1 / the
    number of versions, nothing can satisfy it and every capped version keeps 0.
    Versions absent from the answer are not capped.
    """
    if max_share >= 1.0:
        return {}
    uncapped = counts.get(UNKNOWN, 0)
    versions = {key: n for key, n in counts.items() if key != UNKNOWN and n > 0}
    total = uncapped + sum(versions.values())
    while True:
        allowed = math.floor(max_share * total + 1e-9)
        kept = uncapped + sum(min(n, allowed) for n in versions.values())
        if kept >= total:
            break
        total = kept
    return {key: allowed for key, n in versions.items() if n > allowed}


def shares_of(counts: Mapping[str, int]) -> dict[str, float]:
    """Each source's share of ``counts`` (largest first), rounded for reading."""
    total = sum(counts.values())
    if total == 0:
        return {}
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {key: round(n / total, 6) for key, n in ordered}


def describe_shares(shares: Mapping[str, float], *, top: int = 4) -> str:
    """``model@2 62%, unknown 38%`` (the largest ``top``, then how many more), or ``-``."""
    if not shares:
        return "-"
    items = [f"{key} {share:.0%}" for key, share in list(shares.items())[:top]]
    more = len(shares) - top
    return ", ".join(items) + (f", +{more} more" if more > 0 else "")


def source_shares(manifest: Mapping[str, object]) -> dict[str, float]:
    """The shares a stored manifest reports (empty for datasets built before they were)."""
    sources = manifest.get("sources")
    shares = sources.get("shares") if isinstance(sources, dict) else None
    return dict(shares) if isinstance(shares, dict) else {}
