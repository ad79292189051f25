"""Writes collected posts as JSONL (orjson: the stdlib encoder was most of the collector's time)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO

import orjson

from tuneloop.domain.posts import CollectedPost

FIELDS = CollectedPost._fields


def write_posts_jsonl(chunks: Iterable[list[CollectedPost]], sink: BinaryIO) -> int:
    """Write every post as one JSON object per line; returns the number of rows written."""
    rows = 0
    dumps, option = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    for chunk in chunks:
        sink.write(
            b"".join(dumps(dict(zip(FIELDS, post, strict=True)), option=option) for post in chunk)
        )
        rows += len(chunk)
    return rows
