"""Settings: defaults, env precedence, standard names, the TOML file, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneloop.config import Settings


def test_defaults_are_the_source_designs() -> None:
    p = Settings().pipeline
    assert (p.training_data_threshold, p.engagement_threshold, p.weekly_schedule) == (
        100,
        0.06,
        "0 2 * * 0",
    )
    assert (p.a_b_test_duration_hours, p.days_back, p.chunk_size, p.max_records) == (
        168,
        7,
        1000,
        10000,
    )
    assert Settings().database_url.startswith("sqlite:///")


def test_nested_env_and_standard_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNELOOP_PIPELINE__DAYS_BACK", "14")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@db/x")
    monkeypatch.setenv("FINE_TUNING_ENGAGEMENT_THRESHOLD", "0.08")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    settings = Settings()
    assert settings.pipeline.days_back == 14
    assert settings.pipeline.engagement_threshold == 0.08
    assert settings.database_url == "postgresql://u:secret@db/x"
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"


def test_fine_tuning_enabled_is_read_and_hook_and_body_model_are_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINE_TUNING_ENABLED", "false")
    monkeypatch.setenv("HOOK_MODEL", "gpt-4o")
    settings = Settings()
    assert settings.pipeline.enabled is False
    # No setting pretends to choose a hook or a body model: one fine-tuned model writes both.
    assert not any(
        "hook_model" in name or "body_model" in name for name in settings.pipeline.model_dump()
    )
    assert 'gpt-4o"' not in settings.model_dump_json()


def test_our_own_name_wins_over_the_standard_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://a/x")
    monkeypatch.setenv("TUNELOOP_DATABASE__URL", "postgresql://b/y")
    assert Settings().database_url == "postgresql://b/y"


def test_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tuneloop.toml").write_text(
        "[pipeline]\nmax_records = 500\n[source]\ntable = 'content'\n"
    )
    settings = Settings()
    assert settings.pipeline.max_records == 500 and settings.source.table == "content"
    monkeypatch.setenv("TUNELOOP_PIPELINE__MAX_RECORDS", "7")
    assert Settings().pipeline.max_records == 7


def test_invalid_values_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNELOOP_PIPELINE__ENGAGEMENT_THRESHOLD", "1.5")
    with pytest.raises(ValueError, match="engagement_threshold"):
        Settings()


def test_secrets_are_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://user:hunter2@db/x")
    monkeypatch.setenv("REDIS_URL", "redis://:redispass@cache:6379/0")
    settings = Settings()
    text = repr(settings) + str(settings.redacted())
    assert "sk-very-secret" not in text and "hunter2" not in text and "redispass" not in text
    assert settings.openai.api_key is not None
    assert settings.openai.api_key.get_secret_value() == "sk-very-secret"
