"""The error body every failure answers with, and the error responses each route documents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    type: str = Field(description="Stable machine-readable kind, e.g. `not_found`, `rate_limited`.")
    message: str = Field(description="What went wrong, safe to show a user.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="Structured specifics (validation errors, limits)."
    )


class ErrorResponse(BaseModel):
    """``{"error": {"type", "message", "details"}}``: the body of every 4xx and 5xx answer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "type": "not_found",
                        "message": "dataset version '3f2a9c' not found for tenant 'acme'",
                        "details": {},
                    }
                }
            ]
        }
    )

    error: ErrorDetail


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description, **extra}


RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before the next request.",
        "schema": {"type": "integer", "minimum": 1},
    }
}

# Documented on every authenticated route (router-level ``responses=``).
AUTHENTICATED_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _error("Missing, malformed, expired or revoked credentials."),
    403: _error("The caller's role does not allow this."),
    404: _error("Not found, or it belongs to another tenant."),
    422: _error("The request is invalid; `details.errors` lists each problem with its `loc`."),
    429: _error("Rate limit exceeded for this key.", headers=RETRY_AFTER_HEADER),
    503: _error("A component this needs (the database, Redis) is unavailable."),
}

# Documented on routes that take a body.
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("The body could not be decoded (not UTF-8, not readable)."),
    413: _error("The request body is larger than the configured limit."),
}


# The paging query parameters of every list endpoint (``?limit=&offset=``).
PageLimit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
PageOffset = Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip.")]
