"""A JSON body read by an endpoint itself, with FastAPI's 422 and OpenAPI documentation.

For a hot endpoint that takes no parameters (so FastAPI solves nothing per request):
``read_body`` validates like a body parameter would (errors located under ``body``) and
``json_body`` documents the request body as FastAPI would have.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


async def read_body(request: Request, model: type[Model]) -> Model:
    """The request's JSON body as ``model``; a RequestValidationError (422) otherwise."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=raw) from None


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a required JSON ``model`` (for ``openapi_extra``),
    with the schema inline: for flat models only (a nested model's ``$defs`` would not be
    moved into ``components``)."""
    schema = model.model_json_schema()
    schema.setdefault("title", model.__name__)
    return {"required": True, "content": {"application/json": {"schema": schema}}}
