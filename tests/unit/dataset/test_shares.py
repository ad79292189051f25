"""Share of examples per source model version, and the cap on any one version's share."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from tuneloop.dataset.builder import BuildOptions, BuildResult, DatasetBuilder
from tuneloop.dataset.shares import UNKNOWN, cap_quotas, describe_shares, shares_of, source_key
from tuneloop.domain.posts import CollectedPost

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def posts(model: str | None, version: str | None, n: int, *, start: int) -> list[CollectedPost]:
    """``n`` posts of one source, engagement falling with the index (the collector's order)."""
    return [
        CollectedPost(
            f"p{start + i}",
            None,
            f"Hook {start + i}",
            f"Body {start + i}.",
            round(0.9 - i / 1000, 6),
            NOW,
            model,
            version,
        )
        for i in range(n)
    ]


def build(collected: list[CollectedPost], max_share: float) -> tuple[BuildResult, list[str]]:
    """The collector's two steps: count per source, then stream highest engagement first."""
    collected = sorted(collected, key=lambda p: (-p.engagement_rate, p.id))
    counts: dict[str, int] = {}
    for post in collected:
        key = source_key(post.source_model, post.source_version)
        counts[key] = counts.get(key, 0) + 1
    sinks = {"train": io.StringIO(), "validation": io.StringIO(), "meta": io.StringIO()}
    options = BuildOptions(threshold=1, max_share_per_model=max_share)
    builder = DatasetBuilder(options, sinks, quotas=cap_quotas(counts, max_share))  # type: ignore[arg-type]
    builder.add_all(collected)
    kept = [line for line in sinks["meta"].getvalue().splitlines() if '"kind":"hook"' in line]
    return builder.finish(), kept


def world() -> list[CollectedPost]:
    """60 posts by m@2, 20 by m@1, 20 of unknown origin."""
    return (
        posts("m", "2", 60, start=0)
        + posts("m", "1", 20, start=100)
        + posts(None, None, 20, start=200)
    )


def test_source_key_is_the_routing_label_or_unknown() -> None:
    assert source_key("m", "3") == "m@3"
    assert source_key(None, None) == source_key("", "7") == UNKNOWN


def test_shares_are_reported_per_version_without_a_cap() -> None:
    result, _ = build(world(), 1.0)
    report = result.source_report()
    assert report["examples"] == {"m@1": 40, "m@2": 120, UNKNOWN: 40}  # hook + body each
    assert report["shares"] == {"m@2": 0.6, "m@1": 0.2, UNKNOWN: 0.2}
    assert report["dropped_posts"] == {} and report["reason"] is None
    assert result.manifest()["sources"] == report
    assert describe_shares(report["shares"]) == "m@2 60%, m@1 20%, unknown 20%"


def test_a_cap_above_the_largest_share_changes_nothing() -> None:
    result, _ = build(world(), 0.7)
    assert result.source_report()["dropped_posts"] == {}
    assert result.counts["total"] == 200


def test_a_cap_exactly_at_the_largest_share_changes_nothing() -> None:
    result, _ = build(world(), 0.6)
    assert result.source_report()["dropped_posts"] == {}
    assert result.source_report()["shares"]["m@2"] == 0.6


def test_a_cap_below_drops_the_over_represented_versions_lowest_engagement_posts() -> None:
    result, kept = build(world(), 0.4)
    report = result.source_report()
    # K = 40 + min(60, ⌊0.4K⌋) → K = 66, m@2 keeps 26 (39.4 %)
    assert report["dropped_posts"] == {"m@2": 34}
    assert report["shares"]["m@2"] <= 0.4
    assert report["examples"]["m@2"] == 52 and report["examples"][UNKNOWN] == 40
    assert "40% cap" in report["reason"] and "lowest-engagement" in report["reason"]
    assert result.manifest()["dropped"]["over_share"] == 34
    kept_ids = {line.split('"post_id":"')[1].split('"')[0] for line in kept}
    assert {f"p{i}" for i in range(26)} <= kept_ids  # its best 26 stayed
    assert not kept_ids & {f"p{i}" for i in range(26, 60)}  # its worst 34 went


@pytest.mark.parametrize("max_share", [0.05, 0.2, 0.33, 0.5, 0.75, 0.99])
def test_quotas_keep_every_version_within_the_cap(max_share: float) -> None:
    counts = {"a@1": 500, "a@2": 300, "b@1": 40, UNKNOWN: 60}
    quotas = cap_quotas(counts, max_share)
    kept = {key: min(n, quotas.get(key, n)) for key, n in counts.items()}
    total = sum(kept.values())
    assert all(n <= max_share * total + 1e-9 for key, n in kept.items() if key != UNKNOWN)
    assert kept[UNKNOWN] == 60  # unknown origin is never capped


def test_one_version_alone_cannot_meet_a_cap_below_one() -> None:
    assert cap_quotas({"a@1": 10}, 0.5) == {"a@1": 0}
    assert cap_quotas({"a@1": 10}, 1.0) == {}
    assert shares_of({}) == {}


def test_a_cap_that_leaves_too_little_says_so_in_the_message() -> None:
    collected = posts("m", "2", 30, start=0)
    sinks = {"train": io.StringIO(), "validation": io.StringIO(), "meta": io.StringIO()}
    options = BuildOptions(threshold=10, max_share_per_model=0.5)
    builder = DatasetBuilder(options, sinks, quotas=cap_quotas({"m@2": 30}, 0.5))  # type: ignore[arg-type]
    builder.add_all(collected)
    result = builder.finish()
    assert result.status == "not_enough_data"
    assert "30 posts over the 50% share per model version dropped" in result.message
