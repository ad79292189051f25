"""Who may do what, and the shape of an API key: pure values the entry points share.

A key reads ``tl_<id>_<secret>``: ``id`` (12 hex characters) is visible and names the row,
``secret`` carries 256 random bits. Only the sha256 of the whole key is stored
(``tuneloop.store.auth_models``); a fast hash is enough because the secret is random.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

KEY_PREFIX = "tl_"


class Role(StrEnum):
    """What a caller may do; each role includes the ones below it."""

    VIEWER = "viewer"  # reads
    OPERATOR = "operator"  # also starts runs, creates tests, deploys, rolls back, writes data
    ADMIN = "admin"  # also manages keys

    def includes(self, other: Role) -> bool:
        return _RANK[self] >= _RANK[other]


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def key_id_of(plaintext: str) -> str | None:
    """The visible id inside a presented key, or None when it is not shaped like one."""
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or f"{parts[0]}_" != KEY_PREFIX or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1]
