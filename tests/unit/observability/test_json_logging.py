"""JSON log lines: context fields kept, secrets masked, exceptions without tracebacks."""

from __future__ import annotations

import json
import logging

from tuneloop.config import Settings
from tuneloop.observability.logging import JsonFormatter, Redactor, secrets_of


def record(message: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("tuneloop.test", logging.INFO, __file__, 1, message, None, None)
    rec.__dict__.update(extra)
    return rec


def test_context_fields_are_kept_and_others_dropped() -> None:
    line = json.loads(
        JsonFormatter().format(
            record("hi", request_id="r1", tenant="acme", status=200, latency_ms=1.5, password="x")
        )
    )
    assert line["message"] == "hi"
    assert line["level"] == "INFO"
    assert line["logger"] == "tuneloop.test"
    assert (line["request_id"], line["tenant"], line["status"], line["latency_ms"]) == (
        "r1",
        "acme",
        200,
        1.5,
    )
    assert "password" not in line
    assert line["ts"].endswith("+00:00")


def test_secrets_are_masked_wherever_they_appear() -> None:
    redact = Redactor(["jwt-secret-value-123"])
    text = redact(
        "db postgresql://app:hunter2@db/x, redis://:redispass@cache:6379, "
        "key tl_0123456789ab_SeCrEt-part_x, Authorization: Bearer eyJ.abc.def, jwt-secret-value-123"
    )
    for secret in ("hunter2", "redispass", "SeCrEt-part", "eyJ.abc.def", "jwt-secret-value-123"):
        assert secret not in text
    assert "postgresql://app:***@db/x" in text
    assert "tl_0123456789ab_***" in text


def test_settings_secrets_are_collected() -> None:
    settings = Settings(
        database={"url": "postgresql://u:pg-password@h/db"},
        api={"jwt_secret": "j" * 40},
        openai={"api_key": "sk-test-key"},
    )
    assert set(secrets_of(settings)) == {"pg-password", "j" * 40, "sk-test-key"}
    assert "j" * 40 not in str(settings.redacted())


def test_an_exception_is_its_type_and_place_not_a_traceback() -> None:
    try:
        raise RuntimeError("failed for postgresql://u:hunter2@h/db")
    except RuntimeError as exc:
        rec = record("request failed")
        rec.exc_info = (type(exc), exc, exc.__traceback__)
    line = JsonFormatter().format(rec)
    parsed = json.loads(line)
    assert parsed["error_type"] == "RuntimeError"
    assert parsed["error_message"] == "failed for postgresql://u:***@h/db"
    assert parsed["error_where"].startswith("test_json_logging.py:test_an_exception_is_its_type")
    assert "Traceback" not in line
    assert "hunter2" not in line
