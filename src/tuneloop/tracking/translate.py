"""Translates MLflow's exceptions into tuneloop's, and says which ones are worth a retry.

MLflow signals everything with ``MlflowException`` and an ``error_code``. A connection
refused or a timeout over HTTP arrives as ``INTERNAL_ERROR`` (the requests error is the
``__context__``); a locked SQLite store as ``TEMPORARILY_UNAVAILABLE``. Those are
*transient*: retried, counted by the circuit breaker, and finally raised as
``TrackingUnavailableError``. Other codes mean MLflow answered (a 404, a bad value): no
retry, no breaker failure, and a ``NotFoundError``, ``ConflictError``, ``InvalidInputError``
(MLflow refused a value) or ``ExternalServiceError`` (anything else, e.g. permissions).
"""

from __future__ import annotations

from tuneloop.errors import (
    ConflictError,
    ExternalServiceError,
    InvalidInputError,
    NotFoundError,
    TuneloopError,
)

SERVICE = "mlflow"

_TRANSIENT_CODES = frozenset(
    {
        "INTERNAL_ERROR",
        "TEMPORARILY_UNAVAILABLE",
        "DEADLINE_EXCEEDED",
        "REQUEST_LIMIT_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "ABORTED",
    }
)
_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
_CONFLICT_CODES = frozenset({"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS", "RESOURCE_CONFLICT"})
_INVALID_CODES = frozenset({"INVALID_PARAMETER_VALUE", "BAD_REQUEST"})


class TrackingUnavailableError(ExternalServiceError):
    """MLflow could not be reached (or kept failing) after the retries."""

    def __init__(self, message: str) -> None:
        super().__init__(SERVICE, message)


def error_code(exc: BaseException) -> str | None:
    code = getattr(exc, "error_code", None)
    return code if isinstance(code, str) else None


def is_transient(exc: BaseException) -> bool:
    """True for errors that say "MLflow is down or overloaded", not "MLflow said no"."""
    if isinstance(exc, TuneloopError):
        return False
    code = error_code(exc)
    if code is not None:
        return code in _TRANSIENT_CODES
    # Not an MlflowException: network and file-system errors (requests' are OSErrors too).
    return isinstance(exc, OSError | TimeoutError)


def translate(exc: Exception, operation: str) -> TuneloopError:
    """The tuneloop error to raise ``from exc`` for a failed MLflow ``operation``."""
    if isinstance(exc, TuneloopError):
        return exc
    message = f"{operation}: {_first_line(exc)}"
    if is_transient(exc):
        return TrackingUnavailableError(message)
    code = error_code(exc)
    if code in _NOT_FOUND_CODES:
        return NotFoundError(f"{SERVICE}: {message}")
    if code in _CONFLICT_CODES:
        return ConflictError(f"{SERVICE}: {message}")
    if code in _INVALID_CODES:
        return InvalidInputError(f"{SERVICE}: {message}")
    return ExternalServiceError(SERVICE, message)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]
