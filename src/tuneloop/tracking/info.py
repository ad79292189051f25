"""Plain values the tracking package returns, so no caller ever holds an MLflow object."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

# How a run ended; MLflow's names.
RunStatus = Literal["FINISHED", "FAILED", "KILLED"]

# What log_metrics did with the values: written now, or kept to be flushed later.
Delivery = Literal["logged", "buffered"]

# Tag keys tuneloop writes on runs and model versions.
TAG_PIPELINE_RUN_ID = "tuneloop.pipeline_run_id"
TAG_TENANT = "tuneloop.tenant"
TAG_DATASET_HASH = "tuneloop.dataset_hash"
TAG_PREVIOUS_CHAMPION = "tuneloop.previous_champion"

CHALLENGER = "challenger"
CHAMPION = "champion"


@dataclass(frozen=True)
class ModelVersionInfo:
    """One version of a tenant's registered model."""

    name: str
    version: int
    source: str
    run_id: str | None
    status: str
    created_at: datetime
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def pipeline_run_id(self) -> str | None:
        return self.tags.get(TAG_PIPELINE_RUN_ID)

    @property
    def dataset_hash(self) -> str | None:
        return self.tags.get(TAG_DATASET_HASH)


@dataclass(frozen=True)
class Promotion:
    """The result of ``Tracker.promote``: the new champion and the one it replaced."""

    champion: ModelVersionInfo
    previous: ModelVersionInfo | None  # roll back by promoting this one again


@dataclass(frozen=True)
class FlushResult:
    """What ``Tracker.flush`` did with the buffered metrics."""

    delivered: int
    dropped: int  # their run no longer exists, or MLflow refused the values: logged, discarded
    remaining: int  # still buffered: MLflow is unavailable (or refused us, e.g. permissions)


def from_millis(ms: int | None) -> datetime:
    return datetime.fromtimestamp((ms or 0) / 1000, tz=UTC)
