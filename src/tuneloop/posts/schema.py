"""The validated shape of one incoming post (pydantic: errors name the field)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from tuneloop.domain.text import StorableText

REQUIRED_FIELDS = ("id", "hook", "body", "ts")


class PostIn(StorableText):
    """One post as a client sends it (CSV row, JSONL line or API item)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=128)
    persona_id: str | None = Field(default=None, max_length=128)
    hook: str = Field(min_length=1)
    body: str = Field(min_length=1)
    engagement_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    impressions: int | None = Field(default=None, ge=0)
    engagements: int | None = Field(default=None, ge=0)
    tokens_used: int | None = Field(default=None, ge=0)
    model_id: str | None = Field(default=None, max_length=256)
    # Which model version wrote the post: given outright, read from a ``model_id`` of the
    # form MODEL@VERSION, or (at write time) from the generation ``generation_id`` names.
    source_model: str | None = Field(default=None, max_length=200)
    source_version: str | None = Field(default=None, max_length=32)
    generation_id: str | None = Field(default=None, max_length=128)
    ts: datetime

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator(
        "persona_id", "model_id", "source_model", "source_version", "generation_id", mode="before"
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return None if value == "" else value

    @field_validator("engagement_rate", "impressions", "engagements", "tokens_used", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _source_from_label(self) -> PostIn:
        if self.source_model is None and self.model_id is not None:
            model, at, version = self.model_id.rpartition("@")
            if at and model and version and len(model) <= 200 and len(version) <= 32:
                self.source_model, self.source_version = model, version
        if self.source_model is None:
            self.source_version = None  # a version of no known model says nothing
        return self

    @field_validator("ts")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # A timestamp without an offset is taken as UTC, the convention of most exports.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def describe_errors(exc: ValidationError) -> list[str]:
    """Pydantic's errors as short 'field: reason' strings."""
    reasons = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "row"
        reasons.append(f"{where}: {error['msg']}")
    return reasons
