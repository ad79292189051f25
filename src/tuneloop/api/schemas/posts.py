"""Posts over HTTP: a batch in, accepted and rejected items out (each rejection says why)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from tuneloop.app.posts import IngestReport

_EXAMPLE_POST: dict[str, Any] = {
    "id": "post-1842",
    "persona_id": "founder-voice",
    "hook": "I fired our best engineer. Here's why.",
    "body": "It was the hardest call I made this year...",
    "engagement_rate": 0.083,
    "impressions": 12000,
    "engagements": 996,
    "ts": "2025-01-02T09:30:00Z",
}

# Each item is validated on its own (a bad item is reported, the good ones are kept), so
# the schema accepts any JSON value and the description says what a valid post is.
PostItem = Annotated[
    Any,
    WithJsonSchema(
        {
            "description": "A post. Required: `id`, `hook`, `body`, `ts` (ISO 8601; no offset "
            "means UTC). Optional: `persona_id`, `engagement_rate` (0..1), `impressions`, "
            "`engagements`, `tokens_used`, `model_id`, and which model version wrote it: "
            "`source_model` with `source_version`, a `model_id` of the form MODEL@VERSION, or "
            "the `generation_id` the proxy answered with (X-Tuneloop-Generation-Id; its "
            "recorded model version is stored). Other fields are ignored.",
            "examples": [_EXAMPLE_POST],
        }
    ),
]


class PostsBatchIn(BaseModel):
    """Up to ``api.max_batch_size`` posts; a post id seen again updates that post."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"posts": [_EXAMPLE_POST]}]})

    posts: list[PostItem] = Field(description="The posts to insert or update.")


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where in the request: body, posts, index, field.")
    msg: str
    type: str


class RejectedPost(BaseModel):
    index: int = Field(description="Position of the item in `posts`.")
    id: str | None = Field(description="The item's `id`, when it had a usable one.")
    errors: list[FieldError]


class PostsBatchOut(BaseModel):
    """A multi-status answer: good items were written even when others were rejected."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": ["post-1842"],
                    "rejected": [
                        {
                            "index": 1,
                            "id": "post-1843",
                            "errors": [
                                {
                                    "loc": ["body", "posts", 1, "engagement_rate"],
                                    "msg": "Input should be less than or equal to 1",
                                    "type": "less_than_equal",
                                }
                            ],
                        }
                    ],
                    "accepted_count": 1,
                    "rejected_count": 1,
                }
            ]
        }
    )

    accepted: list[str] = Field(description="Ids of the posts written.")
    rejected: list[RejectedPost]
    accepted_count: int
    rejected_count: int

    @classmethod
    def of(cls, report: IngestReport) -> PostsBatchOut:
        return cls(
            accepted=list(report.accepted),
            rejected=[
                RejectedPost(
                    index=item.index,
                    id=item.id,
                    errors=[FieldError(loc=e.loc, msg=e.msg, type=e.type) for e in item.errors],
                )
                for item in report.rejected
            ],
            accepted_count=len(report.accepted),
            rejected_count=len(report.rejected),
        )


class PostCountOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"count": 3000}]})

    count: int = Field(description="Posts stored for the caller's tenant.")


class PostOut(BaseModel):
    """A stored post, with the model version that wrote it (None: unknown origin)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    persona_id: str | None
    hook: str
    body: str
    engagement_rate: float | None
    impressions: int | None
    engagements: int | None
    tokens_used: int | None
    model_id: str | None
    source_model: str | None = Field(description="The model that wrote it; None: unknown.")
    source_version: str | None = Field(description="Its version; None: unknown.")
    generation_id: str | None = Field(description="The proxy's generation it came from.")
    ts: datetime


class PostPageOut(BaseModel):
    items: list[PostOut]
    total: int = Field(description="Posts the tenant has in all.")
    limit: int
    offset: int
