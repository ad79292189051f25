"""Text that can be stored: no NUL character, in any field of any input model.

PostgreSQL's ``text`` refuses ``\\u0000`` (and one refused row fails its whole statement), so
every input model that reaches the database or a log inherits ``StorableText``: each string
field (and each string in a list field) is checked, and a NUL is a validation error named
after its field — a 422 over HTTP, a rejected item in a batch, a reported row in an import.
The same base refuses a boolean where a number is meant (``{"seed": false}``).
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, GetJsonSchemaHandler, ValidationInfo, field_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

NUL = "\x00"
NUL_REASON = "must not contain a NUL character (\\u0000)"
# What the JSON schema (and so the OpenAPI document) says of every such string field, so
# a client or a schema-driven fuzzer knows the rule the validator enforces.
NUL_FREE_PATTERN = "^[^\\x00]*$"


def has_nul(value: Any) -> bool:
    """Whether ``value`` (a string, or a list/tuple of them) holds a NUL character."""
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, list | tuple):
        return any(isinstance(item, str) and NUL in item for item in value)
    return False


def no_nul(value: Any) -> Any:
    """A pydantic after-validator: ``value`` unchanged, or a ``ValueError`` naming NUL."""
    if has_nul(value):
        raise ValueError(NUL_REASON)
    return value


class StorableText(BaseModel):
    """Base of input models: every string field is NUL-free (checked after its own rules),
    and a number field refuses ``true``/``false`` (which pydantic would read as 1/0)."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and _is_number(field.annotation):
            raise ValueError("must be a number, not true or false")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return no_nul(value)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(core_schema)
        for field in handler.resolve_ref_schema(json_schema).get("properties", {}).values():
            _say_nul_free(field)
        return json_schema


def _say_nul_free(schema: dict[str, Any]) -> None:
    """Give each plain string in a field's schema (optional, or a list's items) the pattern
    that refuses NUL; a string with a pattern of its own keeps it."""
    if schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema:
        schema["pattern"] = NUL_FREE_PATTERN
    for option in schema.get("anyOf", []):
        _say_nul_free(option)
    if isinstance(schema.get("items"), dict):
        _say_nul_free(schema["items"])


def _is_number(annotation: Any) -> bool:
    """An int or float field (optional or not) that does not also admit a bool."""
    kinds = set(get_args(annotation)) or {annotation}
    return bool(kinds & {int, float}) and bool not in kinds
