"""The streaming dataset builder: posts in, validated deduplicated split lines out, one pass.

It holds only 8-byte duplicate keys and per-example token counts, so collections of a
million posts stream through in flat memory. Lines go to ``sinks`` (files, in practice);
the content hash of what was written is the dataset's version.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from tuneloop.dataset.examples import Example, Prompts, examples_for
from tuneloop.dataset.shares import shares_of, source_key
from tuneloop.dataset.split import canonical_line, duplicate_key, split_of
from tuneloop.dataset.tokens import TokenCounter, approximate_tokens, count_example_tokens
from tuneloop.dataset.validate import problems_of
from tuneloop.domain.posts import CollectedPost


class Sink(Protocol):
    def write(self, text: str, /) -> int: ...


@dataclass(frozen=True)
class BuildOptions:
    prompts: Prompts = field(default_factory=Prompts)
    validation_fraction: float = 0.1
    max_tokens_per_example: int = 65536
    min_examples: int = 10  # OpenAI's floor
    threshold: int = 100  # training_data_threshold: fewer valid examples is "not enough data"
    n_epochs_for_estimate: int = 3
    price_per_million_tokens: float = 3.0
    token_counter: TokenCounter = approximate_tokens
    max_share_per_model: float = 1.0  # 1.0: no cap (see dataset.shares)


@dataclass
class DropReport:
    duplicates: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    samples: list[dict[str, Any]] = field(default_factory=list)  # first few, for the user
    over_share: Counter[str] = field(default_factory=Counter)  # posts dropped per version

    @property
    def total(self) -> int:
        return self.duplicates + sum(self.invalid.values())


Status = Literal["ok", "not_enough_data"]


@dataclass(frozen=True)
class BuildResult:
    status: Status
    content_hash: str
    source_records: int
    counts: dict[str, int]  # hook/body/train/validation/total
    tokens: dict[str, Any]
    estimated_cost_usd: float
    engagement: dict[str, float]
    dropped: DropReport
    message: str
    sources: dict[str, int] = field(default_factory=dict)  # examples written per source
    max_share_per_model: float = 1.0

    def source_report(self) -> dict[str, Any]:
        """The share of examples per source version, and what the cap dropped and why."""
        dropped = dict(self.dropped.over_share)
        return {
            "examples": dict(sorted(self.sources.items())),
            "shares": shares_of(self.sources),
            "max_share_per_model": self.max_share_per_model,
            "dropped_posts": dropped,
            "reason": (
                f"lowest-engagement posts of versions above the "
                f"{self.max_share_per_model:.0%} cap (dataset.max_share_per_model)"
                if dropped
                else None
            ),
        }

    def manifest(self) -> dict[str, Any]:
        return {
            "format": "openai-chat-jsonl",
            "content_hash": self.content_hash,
            "status": self.status,
            "source_records": self.source_records,
            "counts": self.counts,
            "tokens": self.tokens,
            "estimated_training_cost_usd": self.estimated_cost_usd,
            "engagement_rate": self.engagement,
            "dropped": {
                "duplicates": self.dropped.duplicates,
                "invalid": dict(self.dropped.invalid),
                "samples": self.dropped.samples,
                "over_share": sum(self.dropped.over_share.values()),
            },
            "sources": self.source_report(),
        }


class DatasetBuilder:
    """Feed posts with :meth:`add`; call :meth:`finish` for the result.

    ``quotas`` (``dataset.shares.cap_quotas``) says how many posts a capped source version
    may keep; the collector streams posts highest engagement first, so keeping each
    version's first posts drops its lowest-engagement ones.
    """

    def __init__(
        self,
        options: BuildOptions,
        sinks: dict[str, Sink],
        *,
        quotas: Mapping[str, int] | None = None,
    ) -> None:
        self.options = options
        self.quotas = dict(quotas or {})
        self._kept: Counter[str] = Counter()  # posts kept per capped version
        self._sources: Counter[str] = Counter()  # examples written per source
        self.sinks = sinks  # "train", "validation", "meta"
        self._seen: set[bytes] = set()
        self._hashes = {"train": hashlib.sha256(), "validation": hashlib.sha256()}
        self._tokens = {"train": array("I"), "validation": array("I")}
        self._kinds: Counter[str] = Counter()
        self._records = 0
        self._rates = array("d")
        self.dropped = DropReport()

    def add_all(self, posts: Iterable[CollectedPost]) -> None:
        for post in posts:
            self.add(post)

    def add(self, post: CollectedPost) -> None:
        self._records += 1
        source = source_key(post.source_model, post.source_version)
        if source in self.quotas:
            if self._kept[source] >= self.quotas[source]:
                self.dropped.over_share[source] += 1
                return
            self._kept[source] += 1
        split = split_of(post.id, self.options.validation_fraction)
        for example in examples_for(post, self.options.prompts):
            self._add_example(example, split, source)

    def _add_example(self, example: Example, split: str, source: str) -> None:
        line = canonical_line(example.record)
        key = duplicate_key(line)
        if key in self._seen:
            self.dropped.duplicates += 1
            return
        tokens = count_example_tokens(example.record, self.options.token_counter)
        reasons = problems_of(
            example.record, tokens=tokens, max_tokens=self.options.max_tokens_per_example
        )
        if reasons:
            for reason in reasons:
                self.dropped.invalid[reason.split(":", 1)[0]] += 1
            if len(self.dropped.samples) < 20:
                self.dropped.samples.append(
                    {"post_id": example.post_id, "kind": example.kind, "reasons": reasons}
                )
            return
        self._seen.add(key)
        self.sinks[split].write(line + "\n")
        self._hashes[split].update(line.encode() + b"\n")
        meta = {
            "post_id": example.post_id,
            "kind": example.kind,
            "split": split,
            "persona_id": example.persona_id,
            "engagement_rate": example.engagement_rate,
            "source": source,
        }
        self.sinks["meta"].write(json.dumps(meta, separators=(",", ":")) + "\n")
        self._tokens[split].append(tokens)
        self._kinds[example.kind] += 1
        self._sources[source] += 1
        self._rates.append(example.engagement_rate)

    def finish(self) -> BuildResult:
        train, validation = len(self._tokens["train"]), len(self._tokens["validation"])
        total = train + validation
        floor = max(self.options.threshold, self.options.min_examples)
        status: Status = "ok" if total >= floor and train > 0 else "not_enough_data"
        message = (
            f"{total} valid examples from {self._records} posts"
            if status == "ok"
            else f"not enough data: {total} valid examples, {floor} needed "
            f"(training_data_threshold={self.options.threshold})"
        )
        if capped := sum(self.dropped.over_share.values()):
            message += (
                f"; {capped} posts over the {self.options.max_share_per_model:.0%} share "
                "per model version dropped (dataset.max_share_per_model)"
            )
        train_tokens = sum(self._tokens["train"])
        cost = train_tokens * self.options.n_epochs_for_estimate
        cost_usd = round(cost * self.options.price_per_million_tokens / 1e6, 4)
        return BuildResult(
            status=status,
            content_hash=self._content_hash(),
            source_records=self._records,
            counts={
                "hook": self._kinds["hook"],
                "body": self._kinds["body"],
                "train": train,
                "validation": validation,
                "total": total,
            },
            tokens={
                "train": _token_stats(self._tokens["train"]),
                "validation": _token_stats(self._tokens["validation"]),
                "total": train_tokens + sum(self._tokens["validation"]),
                "counter": getattr(self.options.token_counter, "__name__", "custom"),
            },
            estimated_cost_usd=cost_usd,
            engagement=_rate_stats(self._rates),
            dropped=self.dropped,
            message=message,
            sources=dict(self._sources),
            max_share_per_model=self.options.max_share_per_model,
        )

    def _content_hash(self) -> str:
        combined = hashlib.sha256()
        combined.update(b"train:" + self._hashes["train"].digest())
        combined.update(b"validation:" + self._hashes["validation"].digest())
        return combined.hexdigest()


def _token_stats(values: array[int]) -> dict[str, float]:
    if not values:
        return {"examples": 0, "sum": 0, "mean": 0.0, "min": 0, "p50": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    count = len(ordered)
    return {
        "examples": count,
        "sum": sum(ordered),
        "mean": round(sum(ordered) / count, 2),
        "min": ordered[0],
        "p50": ordered[count // 2],
        "p95": ordered[min(count - 1, int(count * 0.95))],
        "max": ordered[-1],
    }


def _rate_stats(values: array[float]) -> dict[str, float]:
    if not values:
        return {"min": 0.0, "mean": 0.0, "max": 0.0}
    return {"min": min(values), "mean": round(sum(values) / len(values), 6), "max": max(values)}
