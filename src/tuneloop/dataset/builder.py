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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from tuneloop.dataset.examples import Example, Prompts, examples_for
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


@dataclass
class DropReport:
    duplicates: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    samples: list[dict[str, Any]] = field(default_factory=list)  # first few, for the user

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
            },
        }


class DatasetBuilder:
    """Feed posts with :meth:`add`; call :meth:`finish` for the result."""

    def __init__(self, options: BuildOptions, sinks: dict[str, Sink]) -> None:
        self.options = options
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
        split = split_of(post.id, self.options.validation_fraction)
        for example in examples_for(post, self.options.prompts):
            self._add_example(example, split)

    def _add_example(self, example: Example, split: str) -> None:
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
        }
        self.sinks["meta"].write(json.dumps(meta, separators=(",", ":")) + "\n")
        self._tokens[split].append(tokens)
        self._kinds[example.kind] += 1
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
