"""The streaming dataset builder: examples, validation, dedup, split, hash, not-enough-data."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from tuneloop.dataset.builder import BuildOptions, DatasetBuilder
from tuneloop.dataset.examples import Prompts, examples_for
from tuneloop.dataset.split import split_of
from tuneloop.domain.posts import CollectedPost

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def post(
    i: int, hook: str | None = None, body: str | None = None, rate: float = 0.1
) -> CollectedPost:
    return CollectedPost(
        f"p{i}", "coach", hook or f"Hook number {i}", body or f"Body text {i}.", rate, NOW
    )


def build(posts: list[CollectedPost], **options: object) -> tuple[object, dict[str, io.StringIO]]:
    sinks = {"train": io.StringIO(), "validation": io.StringIO(), "meta": io.StringIO()}
    builder = DatasetBuilder(BuildOptions(**options), sinks)  # type: ignore[arg-type]
    builder.add_all(posts)
    return builder.finish(), sinks


def test_each_post_gives_the_source_designs_hook_and_body_examples() -> None:
    hook, body = examples_for(post(1, "Stop doing X", "Do Y instead."), Prompts())
    assert hook.record["messages"] == [
        {"role": "user", "content": "Create engaging content"},
        {"role": "assistant", "content": "Stop doing X"},
    ]
    assert body.record["messages"] == [
        {"role": "user", "content": "Stop doing X\n\nWrite a detailed post:"},
        {"role": "assistant", "content": "Do Y instead."},
    ]
    assert hook.engagement_rate == body.engagement_rate == 0.1


def test_lines_are_valid_openai_chat_jsonl_and_counts_add_up() -> None:
    result, sinks = build([post(i) for i in range(200)], threshold=100)
    lines = sinks["train"].getvalue().splitlines() + sinks["validation"].getvalue().splitlines()
    assert len(lines) == result.counts["total"] == 400  # type: ignore[attr-defined]
    for line in lines:
        record = json.loads(line)
        assert set(record) == {"messages"}
        assert record["messages"][-1]["role"] == "assistant"
    assert result.status == "ok"  # type: ignore[attr-defined]
    assert result.counts["hook"] == result.counts["body"] == 200  # type: ignore[attr-defined]
    meta = [json.loads(line) for line in sinks["meta"].getvalue().splitlines()]
    assert {m["kind"] for m in meta} == {"hook", "body"}
    assert all(m["engagement_rate"] == 0.1 for m in meta)


def test_exact_duplicates_are_dropped_and_reported() -> None:
    posts = [post(i, hook="Same hook", body=f"Body {i}") for i in range(30)]
    result, _ = build(posts, threshold=10)
    assert result.dropped.duplicates == 29  # type: ignore[attr-defined]
    assert result.counts["hook"] == 1 and result.counts["body"] == 30  # type: ignore[attr-defined]


def test_invalid_examples_are_dropped_with_reasons() -> None:
    posts = [post(i) for i in range(20)] + [post(99, body="word " * 400)]
    result, _ = build(posts, threshold=10, max_tokens_per_example=100)
    assert result.dropped.invalid["too_many_tokens"] == 1  # type: ignore[attr-defined]
    sample = result.dropped.samples[0]  # type: ignore[attr-defined]
    assert sample["post_id"] == "p99" and sample["kind"] == "body"
    assert "limit is 100" in sample["reasons"][0]


def test_under_threshold_is_not_enough_data_not_an_error() -> None:
    result, _ = build([post(i) for i in range(40)], threshold=100)
    assert result.status == "not_enough_data"  # type: ignore[attr-defined]
    assert "80 valid examples, 100 needed" in result.message  # type: ignore[attr-defined]


def test_openai_minimum_of_ten_examples_applies_even_with_a_lower_threshold() -> None:
    result, _ = build([post(i) for i in range(4)], threshold=1)
    assert result.status == "not_enough_data"  # type: ignore[attr-defined]


def test_hash_is_deterministic_and_changes_with_content() -> None:
    first, _ = build([post(i) for i in range(60)], threshold=10)
    again, _ = build([post(i) for i in range(60)], threshold=10)
    changed, _ = build([post(i) for i in range(59)] + [post(59, body="Edited.")], threshold=10)
    assert first.content_hash == again.content_hash  # type: ignore[attr-defined]
    assert first.content_hash != changed.content_hash  # type: ignore[attr-defined]


def test_split_keeps_a_posts_examples_together_and_is_near_the_fraction() -> None:
    result, sinks = build([post(i) for i in range(2000)], threshold=10, validation_fraction=0.2)
    meta = [json.loads(line) for line in sinks["meta"].getvalue().splitlines()]
    by_post: dict[str, set[str]] = {}
    for m in meta:
        by_post.setdefault(m["post_id"], set()).add(m["split"])
    assert all(len(splits) == 1 for splits in by_post.values())
    share = result.counts["validation"] / result.counts["total"]  # type: ignore[attr-defined]
    assert 0.17 < share < 0.23
    assert split_of("p1", 0.2) == split_of("p1", 0.2)


def test_token_stats_and_cost_estimate() -> None:
    result, _ = build(
        [post(i) for i in range(100)],
        threshold=10,
        price_per_million_tokens=10.0,
        n_epochs_for_estimate=2,
    )
    tokens = result.tokens  # type: ignore[attr-defined]
    assert tokens["train"]["min"] <= tokens["train"]["p50"] <= tokens["train"]["max"]
    expected = tokens["train"]["sum"] * 2 * 10.0 / 1e6
    assert abs(result.estimated_cost_usd - round(expected, 4)) < 1e-9  # type: ignore[attr-defined]
