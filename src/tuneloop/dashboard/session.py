"""The dashboard's login session: a signed, expiring cookie, its CSRF token, and its secret.

After a login the browser holds one cookie, ``tuneloop_session``: an HS256 token (signed with
``dashboard.session_secret``) naming the tenant, role and credential, a CSRF token and an
expiry. It is HttpOnly (no script reads it), SameSite=Strict (no other site sends it) and
Secure over HTTPS. Every form carries the session's CSRF token, compared in constant time.
The login form itself, before any session, is protected by a double-submit cookie.

Without a configured secret one is generated once and kept in the workspace, so the
zero-config ``tuneloop serve`` works and its logins survive a restart.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from tuneloop.api.principals import Principal
from tuneloop.config import Settings
from tuneloop.domain.keys import Role

SESSION_COOKIE = "tuneloop_session"
LOGIN_CSRF_COOKIE = "tuneloop_login_csrf"
SECRET_FILE = "dashboard-session.key"
AUDIENCE = "tuneloop-dashboard"
COOKIE_PATH = "/ui"


@dataclass(frozen=True)
class Session:
    """A logged-in browser: who it acts as, its CSRF token, when it expires (epoch s)."""

    principal: Principal
    csrf: str
    expires_at: int


def session_secret(settings: Settings) -> str:
    """The configured secret, else the workspace's (created on first use, mode 0600)."""
    if settings.dashboard.session_secret is not None:
        return settings.dashboard.session_secret.get_secret_value()
    path = Path(settings.workspace) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: of two workers starting at once, one writes and both read the same
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_urlsafe(48))
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    for _ in range(50):  # the writer of a brand-new file may not have finished
        text = path.read_text(encoding="utf-8").strip()
        if len(text) >= 32:
            return text
        time.sleep(0.02)
    raise RuntimeError(f"{path} holds no usable dashboard session secret; delete it")


def new_session(principal: Principal, *, ttl_seconds: int, now: float | None = None) -> Session:
    expires = int((now if now is not None else time.time()) + ttl_seconds)
    return Session(principal, secrets.token_urlsafe(32), expires)


def encode_session(session: Session, secret: str) -> str:
    p = session.principal
    claims = {
        "aud": AUDIENCE,
        "sub": p.subject,
        "tenant": p.tenant_id,
        "role": p.role.value,
        "via": p.method,
        "csrf": session.csrf,
        "exp": session.expires_at,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_session(token: str | None, secret: str) -> Session | None:
    """The session in a cookie, or None when it is missing, forged, expired or malformed."""
    if not token:
        return None
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            options={"require": ["exp", "sub", "aud"]},
        )
        role = Role(claims["role"])
        method = claims["via"]
        if method not in ("api_key", "jwt", "disabled"):
            return None
        principal = Principal(str(claims["tenant"]), role, str(claims["sub"]), method)
        return Session(principal, str(claims["csrf"]), int(claims["exp"]))
    except (jwt.InvalidTokenError, KeyError, ValueError):
        return None


def tokens_match(expected: str | None, presented: str | None) -> bool:
    """Constant-time comparison of two CSRF tokens; a missing one never matches."""
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())
