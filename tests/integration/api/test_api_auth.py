"""Credentials: API keys in either header, HS256 JWTs and their defects, auth disabled."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from api_helpers import JWT_SECRET, Keys, auth, post, with_api
from fastapi.testclient import TestClient

from tuneloop.api.app import create_app
from tuneloop.config import Settings


def token(secret: str = JWT_SECRET, **claims: Any) -> str:
    base = {
        "sub": "ci-bot",
        "tenant": "jwt-co",
        "role": "operator",
        "exp": int(time.time()) + 86400,
    }
    return jwt.encode({**base, **claims}, secret, algorithm="HS256")


@pytest.fixture
def local(sqlite_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_settings)) as client:
        yield client


def test_a_jwt_carries_tenant_and_role(local: TestClient) -> None:
    written = local.post("/posts", json={"posts": [post("j1")]}, headers=auth(token()))
    assert written.status_code == 200, written.text
    viewer = auth(token(role="viewer", sub="someone"))
    assert local.get("/posts/count", headers=viewer).json() == {"count": 1}
    assert local.post("/posts", json={"posts": [post("j2")]}, headers=viewer).status_code == 403
    other_tenant = auth(token(tenant="another-co"))
    assert local.get("/posts/count", headers=other_tenant).json() == {"count": 0}


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (token(exp=int(time.time()) - 10), "token expired"),
        (token(secret="another-secret-that-is-long-enough-too!"), "InvalidSignatureError"),
        (token(role="root"), "claim 'role'"),
        (
            jwt.encode({"sub": "x", "role": "admin", "exp": int(time.time()) + 86400}, JWT_SECRET),
            "claim 'tenant'",
        ),
        (
            jwt.encode({"sub": "x", "tenant": "t", "role": "admin"}, JWT_SECRET),
            "MissingRequiredClaimError",
        ),
        (
            jwt.encode(
                {"sub": "x", "tenant": "t", "role": "admin", "exp": 2**40}, None, algorithm="none"
            ),
            "InvalidAlgorithmError",
        ),
        ("not.a.jwt", "DecodeError"),
    ],
)
def test_a_defective_jwt_is_a_401(local: TestClient, bad: str, says: str) -> None:
    response = local.get("/posts/count", headers=auth(bad))
    assert response.status_code == 401
    assert says in response.json()["error"]["message"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_jwts_are_refused_without_a_secret(sqlite_settings: Settings) -> None:
    app = create_app(with_api(sqlite_settings, jwt_secret=None))
    with TestClient(app) as client:
        response = client.get("/posts/count", headers=auth(token()))
    assert response.status_code == 401
    assert "no jwt_secret" in response.json()["error"]["message"]


def test_keys_in_either_header_and_malformed_ones(client: TestClient, keys: Keys) -> None:
    assert client.get("/posts/count", headers={"X-API-Key": keys.viewer}).status_code == 200
    assert client.get("/posts/count", headers=auth(keys.viewer)).status_code == 200
    for bad in ("tl_short_x", keys.viewer[:-2] + "zz", "tl_" + keys.viewer[3:15] + "_"):
        assert client.get("/posts/count", headers={"X-API-Key": bad}).status_code == 401


def test_auth_disabled_acts_as_default_admin_and_warns(
    sqlite_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tuneloop")
    with TestClient(create_app(with_api(sqlite_settings, auth_disabled=True))) as client:
        assert client.post("/posts", json={"posts": [post("d1")]}).status_code == 200
        assert client.post("/keys", json={"role": "viewer"}).json()["tenant_id"] == "default"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("AUTHENTICATION IS DISABLED" in r.getMessage() for r in warnings)
