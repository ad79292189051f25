"""Structured JSON logs: one object per line, secrets redacted, no stack traces.

Every record carries ``ts``, ``level``, ``logger`` and ``message``; request records add
``request_id``, ``tenant``, ``method``, ``route``, ``status`` and ``latency_ms``. An
exception is logged as its type and the place it was raised, never as a traceback (a
traceback can carry local values, and those can be secrets).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from tuneloop.config import Settings

# Fields a caller may attach with ``extra={...}``; anything else is left out of the line.
CONTEXT_FIELDS = (
    "request_id",
    "tenant",
    "method",
    "route",
    "path",
    "status",
    "latency_ms",
    "client",
    "event",
    "component",
    "error_type",
    "error_where",
    "error_message",
)
_REDACTED = "**********"
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@\s]+@")
_API_KEY = re.compile(r"\btl_(?P<id>[0-9a-f]{12})_[A-Za-z0-9_-]+")
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+")
# What each of the three patterns above needs to match: most texts (a request's route,
# method, id) have none of it and skip the substitutions, the bulk of a line's cost.
_SUSPECT = re.compile(r"://|tl_|(?i:bearer)")
_HANDLER_MARK = "_tuneloop_json_handler"


class Redactor:
    """Masks URL passwords, API keys, bearer tokens and the configured secret values."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is masked whole.
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        if _SUSPECT.search(text) is None and not any(s in text for s in self.secrets):
            return text
        for secret in self.secrets:
            text = text.replace(secret, _REDACTED)
        text = _URL_CREDENTIALS.sub(r"\g<scheme>\g<user>:***@", text)
        text = _API_KEY.sub(r"tl_\g<id>_***", text)
        return _BEARER.sub("Bearer ***", text)


def secrets_of(settings: Settings) -> list[str]:
    """The secret values in the settings, so logs can mask them wherever they appear."""
    from sqlalchemy.engine import make_url

    found = [
        s.get_secret_value()
        for s in (
            settings.api.jwt_secret,
            settings.openai.api_key,
            settings.dashboard.session_secret,
        )
        if s
    ]
    try:
        password = make_url(settings.database_url).password
    except Exception:  # not parseable: nothing to take from it
        password = None
    if password:
        found.append(str(password))
    return found


class JsonFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redact = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = self.redact(value) if isinstance(value, str) else value
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            line.setdefault("error_type", type(error).__name__)
            line.setdefault("error_where", where_raised(error))
            line.setdefault("error_message", self.redact(first_line(error)))
        return json.dumps(line, default=str)


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of the message, cut short: enough to act on, little room for data."""
    text = str(error).strip().splitlines()
    return text[0][:limit] if text else ""


def where_raised(error: BaseException) -> str:
    """``module:function:line`` of the innermost frame: enough to find it, no locals, no trace."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "unknown"
    last = frames[-1]
    return f"{last.filename.rsplit('/', 1)[-1]}:{last.name}:{last.lineno}"


class _StderrHandler(logging.StreamHandler[Any]):
    """Writes to whatever ``sys.stderr`` is when a record comes (test harnesses swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always sys.stderr


def configure_logging(settings: Settings) -> None:
    """JSON lines on stderr for tuneloop and uvicorn, at ``settings.log_level``; idempotent."""
    root = logging.getLogger()
    # Replace our earlier handler and the CLI's console one: a server logs JSON only.
    from rich.logging import RichHandler

    for handler in [
        h for h in root.handlers if getattr(h, _HANDLER_MARK, False) or isinstance(h, RichHandler)
    ]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter(Redactor(secrets_of(settings))))
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    level = logging.getLevelName(settings.log_level.upper())
    level = level if isinstance(level, int) else logging.INFO
    logging.getLogger("tuneloop").setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()  # ours on the root prints them, once, as JSON
        logger.propagate = True
        logger.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True  # the request log replaces it
