"""Text that can be stored: no NUL character, in any field of any input model.

PostgreSQL's ``text`` refuses ``\\u0000`` (and one refused row fails its whole statement), so
every input model that reaches the database or a log inherits ``StorableText``: each string
field (and each string in a list field) is checked, and a NUL is a validation error named
after its field — a 422 over HTTP, a rejected item in a batch, a reported row in an import.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, field_validator

NUL = "\x00"
NUL_REASON = "must not contain a NUL character (\\u0000)"


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
    """Base of input models: every string field is NUL-free (checked after its own rules)."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return no_nul(value)
