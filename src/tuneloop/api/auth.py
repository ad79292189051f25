"""Who is calling, for which tenant, with which role: API keys, JWTs and ``require(role)``.

Credentials: ``Authorization: Bearer tl_...`` or ``X-API-Key: tl_...`` (an API key, checked
against its stored sha256), or ``Authorization: Bearer <JWT>`` (HS256, signed with
``api.jwt_secret``; claims ``sub``, ``tenant``, ``role``, ``exp``). The tenant always comes
from the credential, never from the request, so no route can reach another tenant's data.

In a route, ask for a role and get the caller::

    @router.post("/things")
    def create_thing(principal: Operator, resources: ResourcesDep) -> ThingOut:
        ...  # principal.tenant_id scopes every query

``require(role)`` authenticates (401), rate-limits per credential (429 with Retry-After),
then checks the role (403). With ``api.auth_disabled`` every request is the default
tenant's admin, for local use only.

``require(role)`` is one flat ``async`` dependency: on the hot path (a known key, the
in-process limiter) a request pays no thread hop, no query and no nested dependency
solving. A verified key is remembered for ``api.key_cache_seconds``; revoking a key clears
this process's memory at once, other worker processes stop accepting it within that time.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from tuneloop.api.middleware import context_of
from tuneloop.api.principals import Principal
from tuneloop.api.ratelimit import RedisRateLimiter
from tuneloop.api.resources import Resources, resources_of
from tuneloop.api.revocation import revoked_elsewhere
from tuneloop.app.keys import KEY_PREFIX, Role, hash_key, verify_key
from tuneloop.config import ApiSettings
from tuneloop.domain.tenants import DEFAULT_TENANT

API_KEY_HEADER = "X-API-Key"
# The credentials as OpenAPI documents them (the names FastAPI's HTTPBearer and
# APIKeyHeader would give); see ``document_security``.
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "HTTPBearer": {
        "type": "http",
        "description": "An API key (`tl_...`) or a JWT (HS256; claims sub, tenant, role, exp).",
        "scheme": "bearer",
    },
    "APIKeyHeader": {
        "type": "apiKey",
        "description": "An API key (`tl_...`).",
        "in": "header",
        "name": API_KEY_HEADER,
    },
}
_SECURITY_REQUIREMENT: list[dict[str, list[str]]] = [{"HTTPBearer": []}, {"APIKeyHeader": []}]
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers=_CHALLENGE)


def _bearer_token(request: Request) -> str | None:
    """The credentials of ``Authorization: Bearer <credentials>`` (any case), else None."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    credentials = credentials.strip()
    return credentials if scheme.lower() == "bearer" and credentials else None


async def authenticate(request: Request, resources: Resources) -> Principal:
    """The caller's principal, or 401."""
    api_key = request.headers.get(API_KEY_HEADER)
    bearer = None if api_key else _bearer_token(request)
    if resources.settings.api.auth_disabled:
        principal = Principal(DEFAULT_TENANT, Role.ADMIN, "local", "disabled")
    elif api_key:
        principal = await _from_api_key(resources, api_key)
    elif bearer is not None and bearer.startswith(KEY_PREFIX):
        principal = await _from_api_key(resources, bearer)
    elif bearer is not None:
        principal = principal_from_jwt(bearer, resources.settings.api)
    else:
        raise _unauthorized(
            "credentials missing: send Authorization: Bearer <key or JWT>, or X-API-Key"
        )
    context = context_of(request)
    if context is not None:
        context.tenant = principal.tenant_id
    return principal


async def principal_from_credential(resources: Resources, credential: str) -> Principal:
    """The principal of a presented API key or JWT (the dashboard's login form), or 401."""
    credential = credential.strip()
    if not credential:
        raise _unauthorized("enter an API key or a JWT")
    if credential.startswith(KEY_PREFIX):
        return await _from_api_key(resources, credential)
    return principal_from_jwt(credential, resources.settings.api)


async def _from_api_key(resources: Resources, presented: str) -> Principal:
    cache = resources.keys
    digest = hash_key(presented)
    principal = cache.get(digest)
    if principal is not None:
        if not revoked_elsewhere(resources.redis, principal.subject):
            return principal
        cache.clear()  # revoked by another process: forget it and ask the database
    record = await run_in_threadpool(verify_key, resources.engine, presented)
    if record is None:
        raise _unauthorized("API key unknown or revoked")
    principal = Principal(record.tenant_id, Role(record.role), record.id, "api_key")
    cache.put(digest, principal)
    return principal


def principal_from_jwt(token: str, settings: ApiSettings) -> Principal:
    """Verify an HS256 token and read its principal; any defect answers 401."""
    if settings.jwt_secret is None:
        raise _unauthorized("JWT bearer tokens are not accepted here (no jwt_secret configured)")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=["HS256"],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise _unauthorized(f"token invalid: {type(exc).__name__}") from None
    tenant, role = claims.get("tenant"), claims.get("role")
    if not isinstance(tenant, str) or not 0 < len(tenant) <= 64:
        raise _unauthorized("token invalid: claim 'tenant' missing or malformed")
    if role not in {r.value for r in Role}:
        raise _unauthorized("token invalid: claim 'role' must be viewer, operator or admin")
    return Principal(tenant, Role(role), str(claims["sub"]), "jwt")


async def admit(request: Request, role: Role, *, serving: bool = False) -> Principal:
    """Authenticate (401), rate-limit (429) and check ``role`` or above (403): what
    ``require(role)`` does, for an endpoint that takes no dependencies (``/v1/route``).
    ``serving``: counted against ``api.serving_rate_limit_per_minute`` instead."""
    resources = resources_of(request.app)
    principal = await authenticate(request, resources)
    limiter = resources.limiter
    per_minute = resources.settings.api.rate_limit_per_minute
    if serving and resources.serving_limiter is not None:
        limiter = resources.serving_limiter
        per_minute = resources.settings.api.serving_rate_limit_per_minute
    if isinstance(limiter, RedisRateLimiter):  # a network round trip: off the event loop
        decision = await run_in_threadpool(limiter.hit, principal.rate_key)
    else:
        decision = limiter.hit(principal.rate_key)
    if not decision.allowed:
        raise HTTPException(
            429,
            f"rate limit of {per_minute} requests per "
            f"minute exceeded; retry in {decision.retry_after_seconds} s",
            headers={"Retry-After": str(decision.retry_after_seconds)},
        )
    if not principal.role.includes(role):
        raise HTTPException(
            403, f"this needs the {role.value} role; the caller is {principal.role.value}"
        )
    return principal


def require(role: Role, *, serving: bool = False) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that admits callers with ``role`` or above and returns their principal."""

    # One flat dependency reading the headers itself: each sub-dependency (FastAPI's
    # HTTPBearer and APIKeyHeader included) costs every request FastAPI's dependency
    # solving, the largest share of a /v1/route answer (bench/route.py). The credentials
    # are documented in OpenAPI by ``document_security`` instead.
    async def dependency(request: Request) -> Principal:
        return await admit(request, role, serving=serving)

    return dependency


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
# Generation traffic (the proxy): its own, higher rate limit.
ServingOperator = Annotated[Principal, Depends(require(Role.OPERATOR, serving=True))]


def document_security(app: FastAPI) -> None:
    """Add the credentials to ``app``'s OpenAPI: the two schemes, required by every
    operation that documents a 401 (the routes behind ``require``; the probes and
    ``/metrics`` do not)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if "401" in operation.get("responses", {}):
                    operation["security"] = _SECURITY_REQUIREMENT
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
