"""Dashboard auth through the ASGI app (no browser), on SQLite and PostgreSQL: login and its
cookie, CSRF on every form, roles, tenants, expiry, logout, and the persisted secret."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tuneloop.api.app import create_app
from tuneloop.api.principals import Principal
from tuneloop.config import DashboardSettings, Settings
from tuneloop.dashboard.session import (
    SECRET_FILE,
    SESSION_COOKIE,
    encode_session,
    new_session,
    session_secret,
)
from tuneloop.pipeline.service import start_run
from tuneloop.store.auth_models import Role, create_api_key, key_id_of, revoke_api_key


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), follow_redirects=False) as started:
        yield started


def _key(client: TestClient, role: Role, tenant: str = "acme") -> str:
    engine = client.app.state.resources.engine  # type: ignore[attr-defined]
    return create_api_key(engine, tenant, role=role).plaintext


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


def _login(client: TestClient, credential: str) -> str:
    """Log in; the session's CSRF token."""
    token = _csrf(client.get("/ui/login").text)
    answer = client.post("/ui/login", data={"csrf_token": token, "credential": credential})
    assert answer.status_code == 303, answer.text
    return _csrf(client.get("/ui").text)


def test_pages_need_a_login_and_the_cookie_is_locked_down(client: TestClient) -> None:
    answer = client.get("/ui/runs")
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login?next=/ui/runs"
    login = client.get("/ui/login?next=/ui/runs")
    answer = client.post(
        "/ui/login",
        data={
            "csrf_token": _csrf(login.text),
            "credential": _key(client, Role.VIEWER),
            "next": "/ui/runs",
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/runs"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=28800" in cookie
    assert "Path=/ui" in cookie
    assert client.get("/ui/runs").status_code == 200


def test_login_refuses_bad_keys_missing_csrf_and_foreign_redirects(client: TestClient) -> None:
    token = _csrf(client.get("/ui/login").text)
    wrong = client.post("/ui/login", data={"csrf_token": token, "credential": "tl_nope"})
    assert wrong.status_code == 401 and "Login failed" in wrong.text
    no_csrf = client.post("/ui/login", data={"credential": _key(client, Role.ADMIN)})
    assert no_csrf.status_code == 403
    answer = client.post(
        "/ui/login",
        data={
            "csrf_token": token,
            "credential": _key(client, Role.ADMIN),
            "next": "//evil.example/ui",
        },
    )
    assert answer.headers["location"] == "/ui"


def test_forms_need_the_session_csrf_token_and_the_operator_role(
    client: TestClient, settings: Settings
) -> None:
    csrf = _login(client, _key(client, Role.OPERATOR))
    assert client.post("/ui/runs/start", data={}).status_code == 403
    assert client.post("/ui/runs/start", data={"csrf_token": "forged"}).status_code == 403
    missing = client.post("/ui/deployments/deploy-x/rollback", data={"csrf_token": csrf})
    assert missing.status_code == 404 and "not found" in missing.text  # past CSRF and role

    client.cookies.clear()
    viewer_csrf = _login(client, _key(client, Role.VIEWER))
    refused = client.post("/ui/runs/start", data={"csrf_token": viewer_csrf})
    assert refused.status_code == 403 and "operator role" in refused.text
    assert 'action="/ui/runs/start"' not in client.get("/ui/runs").text


def test_operator_starts_a_run_from_the_runs_page(client: TestClient) -> None:
    csrf = _login(client, _key(client, Role.OPERATOR))
    assert 'action="/ui/runs/start"' in client.get("/ui/runs").text
    answer = client.post("/ui/runs/start", data={"csrf_token": csrf})
    assert answer.status_code == 303, answer.text
    assert re.match(r"/ui/runs/ft-pipeline-\d{8}-\d{3}\?notice=", answer.headers["location"])
    page = client.get(answer.headers["location"])
    assert page.status_code == 200 and "started" in page.text


def test_the_runs_filter_shows_only_runs_in_that_status(
    client: TestClient, settings: Settings
) -> None:
    engine = client.app.state.resources.engine  # type: ignore[attr-defined]
    run = start_run(engine, settings, "acme", force_run=True)
    _login(client, _key(client, Role.VIEWER))
    assert run.id in client.get("/ui/runs?status=pending").text
    filtered = client.get("/ui/runs?status=failed").text
    assert run.id not in filtered and "No runs with status failed" in filtered


def test_another_tenants_run_is_a_404_page(client: TestClient, settings: Settings) -> None:
    engine = client.app.state.resources.engine  # type: ignore[attr-defined]
    run = start_run(engine, settings, "acme", force_run=True)
    _login(client, _key(client, Role.ADMIN, tenant="globex"))
    answer = client.get(f"/ui/runs/{run.id}")
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    client.cookies.clear()
    _login(client, _key(client, Role.VIEWER, tenant="acme"))
    assert client.get(f"/ui/runs/{run.id}").status_code == 200


def test_expired_or_forged_sessions_and_logout(client: TestClient, settings: Settings) -> None:
    secret = session_secret(settings)
    who = Principal("acme", Role.ADMIN, "k1", "api_key")
    expired = new_session(who, ttl_seconds=60, now=0)
    client.cookies.set(SESSION_COOKIE, encode_session(expired, secret), path="/ui")
    assert client.get("/ui").status_code == 303
    forged = new_session(who, ttl_seconds=600)
    client.cookies.set(SESSION_COOKIE, encode_session(forged, "x" * 40), path="/ui")
    assert client.get("/ui").status_code == 303

    client.cookies.clear()
    csrf = _login(client, _key(client, Role.VIEWER))
    assert client.post("/ui/logout", data={}).status_code == 403  # logout needs CSRF too
    out = client.post("/ui/logout", data={"csrf_token": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert client.get("/ui").status_code == 303


def test_the_generated_secret_is_kept_in_the_workspace(settings: Settings) -> None:
    first = session_secret(settings)
    assert (settings.workspace / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    assert session_secret(settings) == first and len(first) >= 32
    given = DashboardSettings(session_secret=SecretStr("s" * 40))
    assert session_secret(settings.model_copy(update={"dashboard": given})) == "s" * 40


def test_revoking_the_key_ends_its_sessions(client: TestClient) -> None:
    key = _key(client, Role.OPERATOR)
    _login(client, key)
    assert client.get("/ui").status_code == 200
    engine = client.app.state.resources.engine  # type: ignore[attr-defined]
    revoke_api_key(engine, "acme", key_id_of(key) or "")
    assert client.get("/ui").status_code == 303


def test_a_jwt_logs_in_with_its_tenant_and_role(settings: Settings) -> None:
    from datetime import timedelta

    from tuneloop.cli.keys import mint_jwt
    from tuneloop.config import ApiSettings

    api = ApiSettings(jwt_secret=SecretStr("j" * 40))
    configured = settings.model_copy(update={"api": api})
    token = mint_jwt(api, tenant="globex", role=Role.VIEWER, subject="ops", ttl=timedelta(hours=1))
    with TestClient(create_app(configured), follow_redirects=False) as client:
        _login(client, token)
        page = client.get("/ui/runs").text
        assert "globex · viewer" in page and 'action="/ui/runs/start"' not in page


def test_with_auth_disabled_the_login_is_the_local_admin(settings: Settings) -> None:
    from tuneloop.config import ApiSettings

    configured = settings.model_copy(update={"api": ApiSettings(auth_disabled=True)})
    with TestClient(create_app(configured), follow_redirects=False) as client:
        _login(client, "anything")
        assert "default · admin" in client.get("/ui").text
