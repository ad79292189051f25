"""The role matrix: each role (and no credentials) x each endpoint -> the expected status."""

from __future__ import annotations

from collections.abc import Callable

from api_helpers import TENANT_A, Keys, add_dataset, auth, post
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

from tuneloop.store.auth_models import Role, create_api_key

ROLES = ("admin", "operator", "viewer", "anonymous", "bad-key")
# endpoint -> (role needed, status on success); None: public.
NEEDS: dict[str, tuple[str | None, int]] = {
    "POST /posts": ("operator", 200),
    "GET /posts/count": ("viewer", 200),
    "GET /datasets": ("viewer", 200),
    "GET /datasets/{id}": ("viewer", 200),
    "POST /keys": ("admin", 201),
    "GET /keys": ("admin", 200),
    "DELETE /keys/{id}": ("admin", 200),
    # Nothing is registered in this tenant: an authorized caller gets "nothing to serve".
    "POST /v1/route": ("viewer", 404),
    "GET /v1/models": ("viewer", 200),
    "POST /v1/chat/completions": ("operator", 404),
    "GET /health": (None, 200),
    "GET /health/live": (None, 200),
    "GET /health/ready": (None, 200),
    "GET /metrics": (None, 200),
}


def expected(role: str, endpoint: str) -> int:
    needed, ok = NEEDS[endpoint]
    if needed is None:
        return ok
    if role in ("anonymous", "bad-key"):
        return 401
    return ok if Role(role).includes(Role(needed)) else 403


def calls(
    client: TestClient, db: Engine, dataset: str
) -> dict[str, Callable[[dict[str, str]], Response]]:
    def delete_key(headers: dict[str, str]) -> Response:
        victim = create_api_key(db, TENANT_A, role=Role.VIEWER).record.id
        return client.delete(f"/keys/{victim}", headers=headers)

    return {
        "POST /posts": lambda h: client.post("/posts", json={"posts": [post("p1")]}, headers=h),
        "GET /posts/count": lambda h: client.get("/posts/count", headers=h),
        "GET /datasets": lambda h: client.get("/datasets", headers=h),
        "GET /datasets/{id}": lambda h: client.get(f"/datasets/{dataset}", headers=h),
        "POST /keys": lambda h: client.post("/keys", json={"role": "viewer"}, headers=h),
        "GET /keys": lambda h: client.get("/keys", headers=h),
        "DELETE /keys/{id}": delete_key,
        "POST /v1/route": lambda h: client.post("/v1/route", json={"unit_id": "u"}, headers=h),
        "GET /v1/models": lambda h: client.get("/v1/models", headers=h),
        "POST /v1/chat/completions": lambda h: client.post(
            "/v1/chat/completions",
            json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
            headers=h,
        ),
        "GET /health": lambda h: client.get("/health", headers=h),
        "GET /health/live": lambda h: client.get("/health/live", headers=h),
        "GET /health/ready": lambda h: client.get("/health/ready", headers=h),
        "GET /metrics": lambda h: client.get("/metrics", headers=h),
    }


def headers_for(role: str, keys: Keys) -> dict[str, str]:
    if role == "anonymous":
        return {}
    if role == "bad-key":
        return auth("tl_000000000000_not-a-real-key")
    return auth(keys.of(role))


def test_every_role_gets_exactly_what_it_may(client: TestClient, db: Engine, keys: Keys) -> None:
    endpoints = calls(client, db, add_dataset(db, TENANT_A))
    actual = {
        (role, name): call(headers_for(role, keys)).status_code
        for role in ROLES
        for name, call in endpoints.items()
    }
    wanted = {(role, name): expected(role, name) for role in ROLES for name in endpoints}
    assert actual == wanted
