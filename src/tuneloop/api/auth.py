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
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from tuneloop.api.middleware import context_of
from tuneloop.api.principals import Principal
from tuneloop.api.ratelimit import RedisRateLimiter
from tuneloop.api.resources import Resources, resources_of
from tuneloop.config import DEFAULT_TENANT, ApiSettings
from tuneloop.store.auth_models import KEY_PREFIX, Role, hash_key, verify_api_key

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key (`tl_...`) or a JWT (HS256; claims sub, tenant, role, exp).",
)
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (`tl_...`).")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers=_CHALLENGE)


async def authenticate(
    request: Request,
    resources: Resources,
    bearer: HTTPAuthorizationCredentials | None,
    api_key: str | None,
) -> Principal:
    """The caller's principal, or 401."""
    if resources.settings.api.auth_disabled:
        principal = Principal(DEFAULT_TENANT, Role.ADMIN, "local", "disabled")
    elif api_key:
        principal = await _from_api_key(resources, api_key)
    elif bearer is not None and bearer.credentials.startswith(KEY_PREFIX):
        principal = await _from_api_key(resources, bearer.credentials)
    elif bearer is not None:
        principal = principal_from_jwt(bearer.credentials, resources.settings.api)
    else:
        raise _unauthorized(
            "credentials missing: send Authorization: Bearer <key or JWT>, or X-API-Key"
        )
    context = context_of(request)
    if context is not None:
        context.tenant = principal.tenant_id
    return principal


async def _from_api_key(resources: Resources, presented: str) -> Principal:
    cache = resources.keys
    digest = hash_key(presented)
    principal = cache.get(digest)
    if principal is not None:
        return principal
    record = await run_in_threadpool(verify_api_key, resources.engine, presented)
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


def require(role: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that admits callers with ``role`` or above and returns their principal."""

    # One flat dependency (the two security schemes are its only sub-dependencies, and they
    # document the credentials in OpenAPI): each nested dependency costs every request
    # FastAPI's solving, a measurable share of a /v1/route answer (bench/route.py).
    async def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        api_key: Annotated[str | None, Security(_api_key)],
    ) -> Principal:
        resources = resources_of(request.app)
        principal = await authenticate(request, resources, bearer, api_key)
        limiter = resources.limiter
        if isinstance(limiter, RedisRateLimiter):  # a network round trip: off the event loop
            decision = await run_in_threadpool(limiter.hit, principal.rate_key)
        else:
            decision = limiter.hit(principal.rate_key)
        if not decision.allowed:
            raise HTTPException(
                429,
                f"rate limit of {resources.settings.api.rate_limit_per_minute} requests per "
                f"minute exceeded; retry in {decision.retry_after_seconds} s",
                headers={"Retry-After": str(decision.retry_after_seconds)},
            )
        if not principal.role.includes(role):
            raise HTTPException(
                403, f"this needs the {role.value} role; the caller is {principal.role.value}"
            )
        return principal

    return dependency


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
