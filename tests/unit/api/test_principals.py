"""Credentials without HTTP: key format and hashing, roles, JWT claims, the error table."""

from __future__ import annotations

import time

import jwt
import pytest
from starlette.exceptions import HTTPException

from tuneloop.api.app import ERROR_STATUS
from tuneloop.api.auth import principal_from_jwt
from tuneloop.api.errors import status_for
from tuneloop.config import ApiSettings
from tuneloop.errors import ConflictError, NotFoundError, TuneloopError
from tuneloop.store.auth_models import Role, hash_key, key_id_of

SECRET = "unit-test-secret-long-enough-for-hs256"


def test_key_ids_are_read_only_from_well_formed_keys() -> None:
    assert key_id_of("tl_0123456789ab_s3cr_et-") == "0123456789ab"
    for bad in (
        "tl_0123456789ab_",
        "tl_short_secret",
        "xx_0123456789ab_secret",
        "eyJhbGciOi.x.y",
        "",
    ):
        assert key_id_of(bad) is None
    assert hash_key("tl_a") != hash_key("tl_b")
    assert len(hash_key("tl_a")) == 64


def test_roles_include_the_ones_below() -> None:
    assert Role.ADMIN.includes(Role.OPERATOR)
    assert Role.OPERATOR.includes(Role.VIEWER)
    assert not Role.VIEWER.includes(Role.OPERATOR)
    assert not Role.OPERATOR.includes(Role.ADMIN)


def test_a_jwt_names_tenant_role_and_subject() -> None:
    settings = ApiSettings(jwt_secret=SECRET, jwt_audience="tuneloop")
    claims = {
        "sub": "bot",
        "tenant": "acme",
        "role": "viewer",
        "aud": "tuneloop",
        "exp": time.time() + 60,
    }
    principal = principal_from_jwt(jwt.encode(claims, SECRET, algorithm="HS256"), settings)
    assert (principal.tenant_id, principal.role, principal.subject, principal.method) == (
        "acme",
        Role.VIEWER,
        "bot",
        "jwt",
    )
    wrong_audience = jwt.encode(claims | {"aud": "other"}, SECRET, algorithm="HS256")
    with pytest.raises(HTTPException) as raised:
        principal_from_jwt(wrong_audience, settings)
    assert raised.value.status_code == 401


def test_a_short_jwt_secret_is_refused_by_the_settings() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        ApiSettings(jwt_secret="short")


def test_subclasses_map_by_their_nearest_entry() -> None:
    class DatasetMissingError(NotFoundError):
        pass

    assert status_for(DatasetMissingError("x"), ERROR_STATUS) == (404, "not_found")
    assert status_for(ConflictError("x"), ERROR_STATUS) == (409, "conflict")
    assert status_for(TuneloopError("x"), ERROR_STATUS) == (500, "internal")
