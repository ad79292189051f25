"""The dashboard's forms (POST): log in, log out, and the operator's actions.

Each action checks the role and the CSRF token (``access.authorize_form``), calls one view
function, and redirects back to the page with a notice (post/redirect/get).
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from tuneloop.api.auth import principal_from_credential
from tuneloop.api.principals import Principal
from tuneloop.api.resources import resources_of
from tuneloop.dashboard import views
from tuneloop.dashboard.access import SessionDep, authorize_form, read_form, scope_of, secret_of
from tuneloop.dashboard.rendering import HtmlErrorRoute, render
from tuneloop.dashboard.session import (
    COOKIE_PATH,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    decode_session,
    encode_session,
    new_session,
    tokens_match,
)
from tuneloop.domain.keys import Role
from tuneloop.domain.tenants import DEFAULT_TENANT

router = APIRouter(prefix="/ui", route_class=HtmlErrorRoute, include_in_schema=False)
ObjectId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


def _back(path: str, notice: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?notice={quote(notice)}", status_code=303)


def _safe_next(target: str | None) -> str:
    """Only a dashboard path: a login never sends the browser to another site."""
    if target and target.startswith("/ui") and "//" not in target and "\\" not in target:
        return target
    return "/ui"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    if decode_session(request.cookies.get(SESSION_COOKIE), secret_of(request)) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", login_csrf=token, next=_safe_next(next))
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=COOKIE_PATH,
        max_age=3600,
    )
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await read_form(request)
    if not tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf_token")):
        raise HTTPException(403, "the login form expired or was not sent by this page; reload it")
    resources = resources_of(request.app)
    if resources.settings.api.auth_disabled:
        principal = Principal(DEFAULT_TENANT, Role.ADMIN, "local", "disabled")
    else:
        try:
            principal = await principal_from_credential(resources, form.get("credential", ""))
        except HTTPException as exc:
            token = form.get("csrf_token", "")
            message = f"Login failed: {exc.detail}"
            return render(request, "login.html", 401, login_csrf=token, error=message)
    ttl = resources.settings.dashboard.session_ttl_seconds
    session = new_session(principal, ttl_seconds=ttl)
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        encode_session(session, secret_of(request)),
        max_age=ttl,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=COOKIE_PATH,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    await authorize_form(request, session, Role.VIEWER)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response


@router.post("/runs/start")
async def start_run(request: Request, session: SessionDep) -> Response:
    await authorize_form(request, session, Role.OPERATOR)
    run_id = await run_in_threadpool(views.start_run, scope_of(request, session))
    return _back(f"/ui/runs/{run_id}", f"run {run_id} started")


@router.post("/runs/{run_id}/abort")
async def abort_run(request: Request, session: SessionDep, run_id: ObjectId) -> Response:
    form = await authorize_form(request, session, Role.OPERATOR)
    reason = form.get("reason") or "user_requested"
    await run_in_threadpool(views.abort_run, scope_of(request, session), run_id, reason=reason)
    return _back(f"/ui/runs/{run_id}", f"run {run_id} aborted")


@router.post("/experiments/{key}/deploy")
async def deploy(request: Request, session: SessionDep, key: ObjectId) -> Response:
    await authorize_form(request, session, Role.OPERATOR)
    deployment_id = await run_in_threadpool(views.deploy_candidate, scope_of(request, session), key)
    return _back(f"/ui/deployments/{deployment_id}", f"deployment {deployment_id} started")


@router.post("/deployments/{deployment_id}/rollback")
async def rollback(request: Request, session: SessionDep, deployment_id: ObjectId) -> Response:
    form = await authorize_form(request, session, Role.OPERATOR)
    reason = form.get("reason") or "rolled back from the dashboard"
    scope = scope_of(request, session)
    await run_in_threadpool(views.rollback, scope, deployment_id, reason=reason)
    return _back(f"/ui/deployments/{deployment_id}", f"deployment {deployment_id} rolled back")


@router.post("/models/{version}/promote")
async def promote(request: Request, session: SessionDep, version: ObjectId) -> Response:
    await authorize_form(request, session, Role.OPERATOR)
    await run_in_threadpool(views.promote, scope_of(request, session), version)
    return _back("/ui/models", f"version {version} is the champion")
