"""Outcome events over HTTP: a batch in, what was kept and what was refused (and why) out."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

_EXAMPLE_EVENT: dict[str, Any] = {
    "idempotency_key": "evt-000184",
    "kind": "outcome",
    "unit_id": "user-42",
    "experiment_key": "ab-test-20250102-001",
    "arm": "candidate",
    "engagement": 0.083,
    "ts": "2025-01-02T09:30:00Z",
}

# Each event is validated on its own (a bad one is reported, the good ones kept), so the
# schema accepts any JSON value and the description says what a valid event is.
EventItem = Annotated[
    Any,
    WithJsonSchema(
        {
            "description": "An event. Required: `idempotency_key`, `kind` (exposure, "
            "generation, outcome), `unit_id`. `ts` (ISO 8601 with offset) is when it "
            "happened; left out, the server stamps the event with its own clock when it "
            "accepts it (the clock experiment and rollout windows are read in). An exposure or "
            "outcome with a `generation_id` may leave out `unit_id`, `model_id`, "
            "`experiment_key` and `arm`: it inherits them from that generation (an unknown "
            "generation id is refused). Optional: "
            "`experiment_key` with `arm`, `model_id`, `post_id`, `generation_id`, "
            "`engagement` (required for outcome), `tokens`, `cost`, `latency_ms`, `error`. "
            "Unknown fields are refused.",
            "examples": [_EXAMPLE_EVENT],
        }
    ),
]


class EventsBatchIn(BaseModel):
    """Up to ``api.max_batch_size`` events; an idempotency key seen before is a duplicate."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"events": [_EXAMPLE_EVENT]}]})

    events: list[EventItem] = Field(description="The events to record.")


class EventError(BaseModel):
    index: int = Field(description="Position of the event in `events`.")
    field: str = Field(description="The field at fault.")
    reason: str


class EventsBatchOut(BaseModel):
    """A multi-status answer: good events were kept even when others were refused."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "received": 2,
                    "accepted": 1,
                    "duplicates": 0,
                    "rejected": 1,
                    "errors": [{"index": 1, "field": "engagement", "reason": "required"}],
                    "queued": 1,
                }
            ]
        }
    )

    received: int
    accepted: int = Field(
        description="Events accepted: durable in the event stream, written to the events "
        "table by the consumer (its lag is in `/health`)."
    )
    duplicates: int = Field(description="Events already stored (same idempotency key).")
    rejected: int = Field(description="Events refused; `errors` says why, by index.")
    errors: list[EventError]
    queued: int = Field(
        default=0, description="Events appended to the stream by this request (= accepted)."
    )


class EventLagOut(BaseModel):
    """How far the event consumer is behind: figures read from events may miss these."""

    pending: int = Field(description="Events accepted and not yet written to the table.")
    oldest_age_seconds: float | None = Field(
        description="Age of the oldest waiting event; None when none waits."
    )
