"""The validated shape of one outcome event, and per-field reasons when an event is refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tuneloop.domain.experiments import EventKind
from tuneloop.domain.text import NUL, NUL_REASON

# Ingestion is measured against PostgreSQL's COPY, so every rule that can be is a
# constraint pydantic-core checks in Rust: strict numbers (a JSON number; ``true``/``false``
# and numeric strings are refused), lengths, bounds. The cross-field rules and the NUL
# check (``domain.text``: PostgreSQL's text refuses it) are one Python call per event, in
# ``_consistent``: per-field validators cost ~9 calls per event and halved the edge's speed.
StrictFloat = Annotated[float, Strict()]
StrictInt = Annotated[int, Strict()]
_TEXT_FIELDS = (
    "idempotency_key",
    "experiment_key",
    "arm",
    "model_id",
    "post_id",
    "generation_id",
    "unit_id",
)


class EventIn(BaseModel):
    """One event as a client sends it: an exposure, a generation or an engagement outcome.

    - ``exposure``: the unit was served the arm (one per unit is enough; more are harmless).
    - ``generation``: a model call for the unit: ``tokens``, ``cost`` (USD), ``latency_ms``,
      ``error``.
    - ``outcome``: the engagement the unit's post earned (``engagement``, required), sent once
      per post at your measurement horizon.

    ``idempotency_key`` is unique per tenant: sending an event again is a no-op.

    ``ts`` is when it happened; left out, the server stamps the event with its own clock when
    it accepts it (the clock experiment and rollout windows are read in, scaled or not).

    An exposure or outcome that names a ``generation_id`` may leave out ``unit_id``,
    ``model_id``, ``experiment_key`` and ``arm``: it inherits them from that generation
    (``events.inherit``); an unknown generation id is refused.
    """

    # Ids and keys are opaque: kept exactly as sent (no stripping), unknown fields refused.
    model_config = ConfigDict(extra="forbid", frozen=True)

    idempotency_key: str = Field(min_length=1, max_length=128)
    kind: EventKind
    experiment_key: str | None = Field(default=None, min_length=1, max_length=64)
    arm: str | None = Field(default=None, min_length=1, max_length=64)
    model_id: str | None = Field(default=None, max_length=256)
    post_id: str | None = Field(default=None, max_length=128)
    generation_id: str | None = Field(default=None, max_length=128)
    # After kind and generation_id, which its validator reads (fields validate in order).
    unit_id: str | None = Field(default=None, min_length=1, max_length=128, validate_default=True)
    engagement: StrictFloat | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    tokens: StrictInt | None = Field(default=None, ge=0, le=2**31 - 1)
    cost: StrictFloat | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    latency_ms: StrictFloat | None = Field(
        default=None, ge=0.0, le=86_400_000.0, allow_inf_nan=False
    )
    error: Annotated[bool, Strict()] = False
    ts: AwareDatetime | None = None  # None: stamped at acceptance (``events.accept``)

    @field_validator("unit_id")
    @classmethod
    def _unit_or_generation(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Here, not in ``_consistent``: reported even when other fields fail too.
        inherits = info.data.get("generation_id") is not None and info.data.get("kind") in (
            EventKind.EXPOSURE,
            EventKind.OUTCOME,
        )
        if value is None and not inherits:
            raise ValueError("required (or a generation_id to inherit it from)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EventIn:
        # Messages start with the field they are about; ``rejections`` files them under it.
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if value is not None and NUL in value:
                raise ValueError(f"{name}: {NUL_REASON}")
        if self.experiment_key is not None and self.arm is None:
            raise ValueError("arm: required when experiment_key is given")
        if self.arm is not None and self.experiment_key is None:
            raise ValueError("experiment_key: required when arm is given")
        if self.kind is EventKind.OUTCOME and self.engagement is None:
            raise ValueError("engagement: required for an outcome event")
        return self


@dataclass(frozen=True)
class Rejection:
    """Why one event of a batch was refused: its position, the field, the reason."""

    index: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"event {self.index}: {self.field}: {self.reason}"


def rejections(exc: ValidationError, *, offset: int = 0) -> list[Rejection]:
    """Pydantic's errors for a list of events as rejections; ``loc`` starts with the index.

    ``offset`` is added to every index (for a sub-list validated apart from the batch).
    """
    found: list[Rejection] = []
    for error in exc.errors(include_url=False):
        location = list(error["loc"])
        index = int(location.pop(0)) if location and isinstance(location[0], int) else 0
        field = ".".join(str(part) for part in location) or "event"
        reason = _reason(error)
        named, _, why = reason.partition(": ")
        if field == "event" and named in EventIn.model_fields and why:
            field, reason = named, why  # a cross-field rule, filed under its field
        found.append(Rejection(index + offset, field, reason))
    return found


def _reason(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return str(error["msg"]).removeprefix("Value error, ")
