"""A collected post: the fields the dataset builder needs, nothing else."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple


class CollectedPost(NamedTuple):
    """One row of the collector's query (a tuple: millions of them stream through)."""

    id: str
    persona_id: str | None
    hook: str
    body: str
    engagement_rate: float
    ts: datetime
    source_model: str | None = None  # which model version wrote it; None: unknown origin
    source_version: str | None = None
