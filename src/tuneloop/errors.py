"""The exception tree every tuneloop module raises from.

    TuneloopError
    ├── NotFoundError           an object does not exist (in this tenant)      → 404 / exit 4
    ├── ConflictError           it exists already / another run is active      → 409 / exit 5
    ├── InvalidStateError       the object is in the wrong state for this      → 409 / exit 5
    ├── InvalidInputError       the caller sent something wrong                → 422 / exit 2
    ├── ConfigurationError      settings are missing or inconsistent           → 500 / exit 3
    ├── ExternalServiceError    a database, MLflow, an API failed             → 503 / exit 6
    └── TrainingError           training itself failed                         → 500 / exit 7

Statistics never raise for degenerate data; they return an error code in their result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class TuneloopError(Exception):
    """Base of all tuneloop errors; ``str(err)`` is safe to show a user."""


class NotFoundError(TuneloopError):
    pass


class ConflictError(TuneloopError):
    pass


class InvalidStateError(TuneloopError):
    pass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (line, field) and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class InvalidInputError(TuneloopError):
    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class ConfigurationError(TuneloopError):
    pass


class ExternalServiceError(TuneloopError):
    def __init__(self, service: str, message: str) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service


class TrainingError(TuneloopError):
    pass
