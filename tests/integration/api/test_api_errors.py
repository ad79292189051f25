"""The error table and shape: each tuneloop error's status, no traceback or secret anywhere."""

from __future__ import annotations

import pytest
from api_helpers import auth, with_api
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tuneloop.api.app import ERROR_STATUS, create_app
from tuneloop.config import Settings
from tuneloop.errors import (
    ConfigurationError,
    ConflictError,
    ExternalServiceError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    Problem,
    TrainingError,
    TuneloopError,
)

SECRET_URL = "postgresql://app:hunter2-db-password@db.internal/prod"
RAISED: dict[str, TuneloopError | Exception] = {
    "not_found": NotFoundError("experiment 'x' not found"),
    "conflict": ConflictError("a run is already active"),
    "invalid_state": InvalidStateError("the test has ended"),
    "invalid_input": InvalidInputError(
        "bad split", [Problem("traffic_split", "must be in (0, 1)")]
    ),
    "configuration": ConfigurationError(f"cannot use {SECRET_URL}"),
    "external_service": ExternalServiceError("mlflow", f"refused at {SECRET_URL}"),
    "training": TrainingError("loss is NaN"),
    "internal": RuntimeError(f"boom with {SECRET_URL} and sk-live-openai-key"),
}
EXPECTED = {
    "not_found": 404,
    "conflict": 409,
    "invalid_state": 409,
    "invalid_input": 422,
    "configuration": 500,
    "external_service": 503,
    "training": 500,
    "internal": 500,
}


def app_raising(settings: Settings) -> FastAPI:
    app = create_app(with_api(settings, auth_disabled=True))

    def boom(kind: str) -> None:
        raise RAISED[kind]

    app.add_api_route("/boom/{kind}", boom)
    return app


def test_the_table_covers_the_whole_error_tree() -> None:
    assert set(ERROR_STATUS) == set(TuneloopError.__subclasses__())


@pytest.mark.parametrize("kind", sorted(RAISED))
def test_each_error_answers_its_status_in_the_one_shape(
    sqlite_settings: Settings, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with TestClient(app_raising(sqlite_settings), raise_server_exceptions=False) as client:
        response = client.get(f"/boom/{kind}", headers={"X-Request-ID": f"req-{kind}"})
    assert response.status_code == EXPECTED[kind]
    error = response.json()["error"]
    assert set(error) == {"type", "message", "details"}
    assert error["type"] == kind
    assert response.headers["X-Request-ID"] == f"req-{kind}"
    logged = capsys.readouterr().err
    for text in (response.text, logged):
        assert "hunter2" not in text
        assert "Traceback" not in text
        assert 'File "' not in text
    if kind == "internal":
        assert error["details"] == {"request_id": "req-internal"}
        assert error["message"] == "internal server error"  # the exception's text stays inside
        assert '"error_type": "RuntimeError"' in logged
    if kind == "invalid_input":
        assert error["details"]["problems"] == [
            {"where": "traffic_split", "reason": "must be in (0, 1)"}
        ]


def test_unknown_paths_and_methods_answer_in_the_same_shape(sqlite_settings: Settings) -> None:
    with TestClient(create_app(sqlite_settings)) as client:
        missing = client.get("/no-such-thing")
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "not_found"
        wrong = client.put("/posts/count", headers=auth("tl_000000000000_x"))
        assert wrong.status_code == 405
        assert wrong.json()["error"]["type"] == "method_not_allowed"
        assert "GET" in wrong.headers["Allow"]
        broken = client.post(
            "/posts", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert broken.status_code == 422
        assert broken.json()["error"]["type"] == "invalid_input"
