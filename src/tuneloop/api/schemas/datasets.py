"""Dataset versions over HTTP: a page of summaries, and one version with its manifest."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from tuneloop.app.datasets import DatasetPage, DatasetVersion
from tuneloop.dataset.shares import source_shares

_EXAMPLE: dict[str, Any] = {
    "id": "3f2a9c41d0b7e6a5c4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1",
    "persona_id": None,
    "source_records": 1240,
    "hook_examples": 1240,
    "body_examples": 1240,
    "train_examples": 2232,
    "validation_examples": 248,
    "total_tokens": 418220,
    "created_at": "2025-01-02T02:00:05Z",
    "source_shares": {"tuneloop-acme@3": 0.5, "unknown": 0.3, "tuneloop-acme@2": 0.2},
}


class DatasetSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_EXAMPLE]})

    id: str = Field(description="Content hash (sha256 hex): the version.")
    persona_id: str | None
    source_records: int = Field(description="Posts the dataset was built from.")
    hook_examples: int
    body_examples: int
    train_examples: int
    validation_examples: int
    total_tokens: int
    created_at: datetime
    source_shares: dict[str, float] = Field(
        default_factory=dict,
        description="Share of examples per source model version (`MODEL@VERSION`, or "
        "`unknown`), largest first; the manifest's `sources` has counts and what the "
        "`dataset.max_share_per_model` cap dropped.",
    )

    @classmethod
    def of(cls, row: DatasetVersion) -> Self:
        found = cls.model_validate(row)
        found.source_shares = source_shares(row.manifest)
        return found


class DatasetDetail(DatasetSummary):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={"examples": [_EXAMPLE | {"manifest": {"format": "openai-chat-jsonl"}}]},
    )

    manifest: dict[str, Any] = Field(description="Counts, token stats, split, drops.")


class DatasetPageOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [_EXAMPLE], "total": 1, "limit": 50, "offset": 0}]
        }
    )

    items: list[DatasetSummary]
    total: int = Field(description="Versions the tenant has in all.")
    limit: int
    offset: int

    @classmethod
    def of(cls, page: DatasetPage) -> DatasetPageOut:
        return cls(
            items=[DatasetSummary.of(row) for row in page.items],
            total=page.total,
            limit=page.limit,
            offset=page.offset,
        )
