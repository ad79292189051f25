"""Limits: 429 with Retry-After per key (in-process and in Redis), 413 for large bodies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from api_helpers import auth, post, with_api
from fastapi.testclient import TestClient

from tuneloop.api.app import create_app
from tuneloop.config import Settings
from tuneloop.store.auth_models import Role, create_api_key


@contextmanager
def started(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def new_key(client: TestClient) -> str:
    engine = client.app.state.resources.engine  # type: ignore[attr-defined]
    return create_api_key(engine, "acme", role=Role.OPERATOR).plaintext


def assert_limited(client: TestClient, key: str, allowed: int) -> None:
    for _ in range(allowed):
        assert client.get("/posts/count", headers=auth(key)).status_code == 200
    refused = client.get("/posts/count", headers=auth(key))
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limited"
    # 3 a minute: the next token comes in ~20 s.
    assert 1 <= int(refused.headers["Retry-After"]) <= 20


def test_in_process_buckets_are_per_key(sqlite_settings: Settings) -> None:
    with started(with_api(sqlite_settings, rate_limit_per_minute=3)) as client:
        first, second = new_key(client), new_key(client)
        assert_limited(client, first, allowed=3)
        assert client.get("/posts/count", headers=auth(second)).status_code == 200
        assert client.get("/health").status_code == 200  # probes are never limited


@pytest.mark.redis
def test_redis_buckets_are_shared_by_every_worker(
    sqlite_settings: Settings, redis_url: str, redis_prefix: str
) -> None:
    settings = with_api(sqlite_settings, rate_limit_per_minute=3, rate_limit_prefix=redis_prefix)
    settings = settings.model_copy(
        update={"redis": settings.redis.model_copy(update={"url": redis_url})}
    )
    with started(settings) as one, started(settings) as other:  # two workers of one service
        key = new_key(one)
        assert one.get("/posts/count", headers=auth(key)).status_code == 200
        assert_limited(other, key, allowed=2)
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match=f"{redis_prefix}*"))
    finally:
        client.close()


def test_a_body_over_the_limit_is_a_413(sqlite_settings: Settings) -> None:
    with started(with_api(sqlite_settings, max_body_bytes=2048)) as client:
        key = new_key(client)
        big = {"posts": [post(f"p{i}", body="x" * 500) for i in range(5)]}
        declared = client.post("/posts", json=big, headers=auth(key))
        assert declared.status_code == 413
        assert declared.json()["error"] == {
            "type": "payload_too_large",
            "message": "the request body is larger than 2048 bytes",
            "details": {"max_bytes": 2048},
        }
        chunks = (b'{"posts": [' + b'"' + b"x" * 1000 + b'",' for _ in range(3))
        streamed = client.post(
            "/posts", content=chunks, headers=auth(key) | {"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
        assert streamed.json()["error"]["type"] == "payload_too_large"
        small = client.post("/posts", json={"posts": [post("ok")]}, headers=auth(key))
        assert small.status_code == 200


def test_serving_traffic_has_its_own_higher_limit(sqlite_settings: Settings) -> None:
    settings = with_api(sqlite_settings, rate_limit_per_minute=3, serving_rate_limit_per_minute=5)
    with started(settings) as client:
        key = new_key(client)
        assert_limited(client, key, allowed=3)  # the control API is spent...
        route = {"unit_id": "persona-1"}
        for _ in range(5):  # ...generation traffic is counted apart
            answer = client.post("/v1/route", json=route, headers=auth(key))
            assert answer.status_code != 429, answer.text
        refused = client.post("/v1/route", json=route, headers=auth(key))
        assert refused.status_code == 429
        assert "rate limit of 5 requests" in refused.json()["error"]["message"]
