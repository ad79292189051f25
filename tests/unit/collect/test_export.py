"""JSONL export: one object per line, exactly, even when text looks like a boundary."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from tuneloop.collect.export import encode_chunk, write_posts_jsonl
from tuneloop.domain.posts import CollectedPost

TS = datetime(2026, 11, 1, 12, 30, tzinfo=UTC)


def test_each_post_is_one_line_and_round_trips() -> None:
    tricky = 'Break me: },{"id": "x"} and \n a newline, "quotes", ünïcode ✓'
    posts = [
        CollectedPost("a", "coach", tricky, "body", 0.1, TS),
        CollectedPost("b", None, "h", tricky, 0.0, TS),
        CollectedPost("c", "chef", "h", "b", 0.25, TS),
    ]
    sink = io.BytesIO()
    assert write_posts_jsonl([posts[:2], [], posts[2:]], sink) == 3
    lines = sink.getvalue().decode().splitlines()
    assert len(lines) == 3
    decoded = [json.loads(line) for line in lines]
    assert decoded[0]["hook"] == tricky and decoded[1]["body"] == tricky
    assert decoded[1]["persona_id"] is None
    assert decoded[2] == {
        "id": "c",
        "persona_id": "chef",
        "hook": "h",
        "body": "b",
        "engagement_rate": 0.25,
        "ts": "2026-11-01T12:30:00+00:00",
        "source_model": None,  # which model version wrote it: unknown here
        "source_version": None,
    }


def test_an_empty_chunk_writes_nothing() -> None:
    assert encode_chunk([]) == b""
