"""Revoked API keys across worker processes: immediate with Redis, else within the key cache.

Each process trusts a verified key for ``api.key_cache_seconds`` (10 s by default), so a
revocation made in one process reaches the others only when their cached entry expires.
With Redis configured, the revoking process also writes ``<prefix>revoked:<key id>`` (kept
longer than any cache entry can live) and every process checks it before trusting a cached
key: the revocation holds everywhere at once. A Redis that does not answer falls back to
the cache's delay (it never refuses or admits a key on its own).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "tuneloop:keys:"


def _marker(key_id: str) -> str:
    return f"{PREFIX}revoked:{key_id}"


def publish_revocation(redis: Any | None, key_id: str, *, cache_seconds: float) -> bool:
    """Tell every process that ``key_id`` is revoked; False when there is no Redis (or it
    failed): other processes then stop accepting the key within ``cache_seconds``."""
    if redis is None:
        return False
    try:
        redis.set(_marker(key_id), "1", ex=max(60, int(cache_seconds * 2) + 1))
        return True
    except Exception as exc:
        log.warning("could not publish a key revocation", extra={"error_type": type(exc).__name__})
        return False


def revoked_elsewhere(redis: Any | None, key_id: str) -> bool:
    """Whether another process revoked ``key_id`` (False without Redis, or if it fails)."""
    if redis is None:
        return False
    try:
        return bool(redis.exists(_marker(key_id)))
    except Exception as exc:
        log.warning("could not check key revocations", extra={"error_type": type(exc).__name__})
        return False
