"""The app as documented: OpenAPI at /docs, every protected route's error answers, CORS."""

from __future__ import annotations

from api_helpers import with_api
from fastapi.testclient import TestClient

from tuneloop.api.app import create_app
from tuneloop.config import Settings

PUBLIC = {"/health", "/health/live", "/health/ready", "/metrics"}


def test_every_protected_operation_documents_its_error_answers(sqlite_settings: Settings) -> None:
    with TestClient(create_app(sqlite_settings)) as client:
        assert client.get("/docs").status_code == 200
        document = client.get("/openapi.json").json()
    assert {"HTTPBearer", "APIKeyHeader"} <= set(document["components"]["securitySchemes"])
    protected = [
        (path, method, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if path not in PUBLIC
    ]
    assert len(protected) >= 7
    for path, method, operation in protected:
        documented = set(operation["responses"])
        assert {"401", "403", "404", "422", "429"} <= documented, (method, path)
        assert operation["security"], (method, path)
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        assert operation["responses"]["422"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
        if "requestBody" in operation:
            assert "413" in documented, (method, path)


def test_cors_is_off_by_default_and_answers_configured_origins(sqlite_settings: Settings) -> None:
    preflight = {"Origin": "https://dash.example", "Access-Control-Request-Method": "GET"}
    with TestClient(create_app(sqlite_settings)) as client:
        assert (
            "access-control-allow-origin"
            not in client.options("/posts/count", headers=preflight).headers
        )
    configured = with_api(sqlite_settings, cors_origins=["https://dash.example"])
    with TestClient(create_app(configured)) as client:
        answer = client.options("/posts/count", headers=preflight)
        assert answer.headers["access-control-allow-origin"] == "https://dash.example"
        simple = client.get("/health/live", headers={"Origin": "https://dash.example"})
        assert "X-Request-ID" in simple.headers["access-control-expose-headers"]
