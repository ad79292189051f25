"""Bodies of ``/v1/route`` and ``/v1/models``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tuneloop.domain.text import StorableText


class RouteIn(StorableText):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"unit_id": "persona-42"}]}
    )

    unit_id: str = Field(
        min_length=1, max_length=128, description="The user, persona or post the call is for."
    )


class RouteOut(BaseModel):
    """The model for the unit and where the decision came from."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": "acme-hook@4",
                    "model_id": "acme-hook",
                    "version": "4",
                    "source": "deployment",
                    "experiment_key": None,
                    "deployment_id": "deploy-20250102-001",
                    "arm": "new",
                }
            ]
        }
    )

    model: str = Field(description="`MODEL@VERSION`: send it as the events' `model_id`.")
    model_id: str
    version: str
    source: Literal["holdout", "experiment", "deployment", "champion", "pinned"]
    experiment_key: str | None = Field(description="Send it with the events, with `arm`.")
    deployment_id: str | None
    arm: str | None = Field(
        description="The experiment's arm, `new`/`previous` in a rollout, or `holdout`."
    )


class ModelOut(BaseModel):
    id: str = Field(description="`auto` (routed) or `MODEL@VERSION`.")
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelListOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]
