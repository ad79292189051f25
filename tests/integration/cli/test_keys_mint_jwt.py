"""``tuneloop keys mint-jwt``: a token the API accepts, alone on stdout; clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException
from typer.testing import CliRunner, Result

from tuneloop.api.app import create_app
from tuneloop.api.auth import Principal, principal_from_jwt
from tuneloop.config import ApiSettings, Settings, get_settings
from tuneloop.store.auth_models import Role

SECRET = "a-mint-jwt-test-secret-of-at-least-32-chars"
runner = CliRunner()


def mint(*args: str) -> Result:
    from tuneloop.cli.main import app

    get_settings.cache_clear()  # the command reads the environment set by the test
    return runner.invoke(app, ["keys", "mint-jwt", *args])


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TUNELOOP_API__JWT_SECRET", SECRET)
    return SECRET


def test_the_token_is_alone_on_stdout_and_the_api_accepts_it(secret: str) -> None:
    result = mint("--tenant", "acme", "--role", "operator", "--subject", "ci-bot", "--ttl", "30m")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == f"{token}\n"  # nothing else, so $(tuneloop keys mint-jwt) works
    assert "expires" in result.stderr and secret not in result.output

    principal = principal_from_jwt(token, get_settings().api)
    assert principal == Principal("acme", Role.OPERATOR, "ci-bot", "jwt")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 30 * 60


def test_ttl_defaults_to_an_hour_and_audience_and_issuer_are_claimed(
    secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNELOOP_API__JWT_AUDIENCE", "tuneloop-api")
    monkeypatch.setenv("TUNELOOP_API__JWT_ISSUER", "https://issuer.example")
    result = mint("--role", "viewer", "--subject", "dashboard")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()

    principal = principal_from_jwt(token, get_settings().api)
    assert (principal.tenant_id, principal.role) == ("default", Role.VIEWER)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600
    other_audience = ApiSettings(jwt_secret=secret, jwt_audience="someone-else")
    with pytest.raises(HTTPException) as refused:
        principal_from_jwt(token, other_audience)
    assert refused.value.status_code == 401


def test_a_minted_token_works_over_http(secret: str, tmp_path: Path) -> None:
    result = mint("--tenant", "acme", "--role", "viewer", "--subject", "me", "--ttl", "1h30m")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    settings = Settings(
        workspace=tmp_path / "workspace",
        database={"url": f"sqlite:///{tmp_path / 'workspace' / 'tuneloop.db'}"},
        api={"jwt_secret": secret},
    )
    with TestClient(create_app(settings)) as client:
        accepted = client.get("/posts/count", headers={"Authorization": f"Bearer {token}"})
        forged = client.get("/posts/count", headers={"Authorization": f"Bearer {token}x"})
    assert accepted.status_code == 200, accepted.text
    assert forged.status_code == 401


def test_without_a_secret_it_says_so_and_exits_3() -> None:
    result = mint("--role", "admin", "--subject", "me")
    assert result.exit_code == 3  # ConfigurationError, per the CLI's exit code table
    assert "no JWT secret configured" in result.stderr
    assert "TUNELOOP_API__JWT_SECRET" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("ttl", ["0m", "1 hour", "h", "-5m", "1h30", "10x"])
def test_a_bad_ttl_is_an_input_error(secret: str, ttl: str) -> None:
    result = mint("--role", "admin", "--subject", "me", "--ttl", ttl)
    assert result.exit_code == 2, result.output
    assert "--ttl" in result.stderr
    assert result.stdout == ""


def test_a_bad_role_is_refused_by_the_option() -> None:
    result = mint("--role", "owner", "--subject", "me")
    assert result.exit_code == 2
    assert "viewer" in result.stderr
