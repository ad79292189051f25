"""Deterministic train/validation split and exact-duplicate keys."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

Split = Literal["train", "validation"]


def split_of(post_id: str, validation_fraction: float, *, salt: str = "tuneloop-split") -> Split:
    """Assign by post id, so a post's hook and body examples always land in the same split
    (no leakage of a post's hook into validation while its body trains)."""
    digest = hashlib.blake2b(f"{salt}:{post_id}".encode(), digest_size=8).digest()
    position = int.from_bytes(digest, "big") / 2**64
    return "validation" if position < validation_fraction else "train"


def canonical_line(record: dict[str, Any]) -> str:
    """The exact JSONL line written for an example (stable key order, UTF-8 kept)."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def duplicate_key(line: str) -> bytes:
    """A compact key for exact-duplicate detection (8 bytes: millions fit in memory)."""
    return hashlib.blake2b(line.encode(), digest_size=8).digest()
