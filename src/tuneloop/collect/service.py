"""The collect stage: stream qualifying posts into the dataset builder, store the version."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from tuneloop.collect.query import (
    CollectQuery,
    Source,
    count_by_source,
    count_qualifying,
    stream_posts,
)
from tuneloop.config import Settings
from tuneloop.dataset.builder import BuildOptions, BuildResult, DatasetBuilder
from tuneloop.dataset.examples import Prompts
from tuneloop.dataset.shares import cap_quotas
from tuneloop.store.datasets import record_dataset
from tuneloop.store.models import DatasetVersion
from tuneloop.store.watermarks import read_watermark

Progress = Callable[[int], None]  # called with the number of posts read so far


@dataclass(frozen=True)
class CollectOutcome:
    result: BuildResult
    version: DatasetVersion | None  # None when there was not enough data
    qualifying: int


def build_options(settings: Settings) -> BuildOptions:
    d = settings.dataset
    return BuildOptions(
        prompts=Prompts(d.hook_prompt, d.body_prompt_suffix, d.system_prompt),
        validation_fraction=d.validation_fraction,
        max_tokens_per_example=d.max_tokens_per_example,
        min_examples=d.min_examples,
        threshold=settings.pipeline.training_data_threshold,
        n_epochs_for_estimate=d.n_epochs_for_estimate,
        price_per_million_tokens=d.price_per_million_training_tokens,
        max_share_per_model=d.max_share_per_model,
    )


def query_from(
    settings: Settings,
    tenant_id: str,
    *,
    persona_id: str | None = None,
    now: datetime | None = None,
) -> CollectQuery:
    p = settings.pipeline
    return CollectQuery(
        tenant_id=tenant_id,
        engagement_threshold=p.engagement_threshold,
        days_back=p.days_back,
        max_records=p.max_records,
        persona_id=persona_id,
        now=now,
    )


def collect_dataset(
    engine: Engine,
    settings: Settings,
    query: CollectQuery,
    *,
    progress: Progress | None = None,
) -> CollectOutcome:
    """Collect, build and (when there is enough data) record one dataset version."""
    source = Source(settings.source)
    qualifying = count_qualifying(engine, source, query)
    datasets_dir = settings.artifacts_dir / "datasets" / query.tenant_id
    datasets_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=datasets_dir))
    try:
        result, last_ts = _build_into(staging, engine, source, query, settings, progress)
        if result.status != "ok":
            return CollectOutcome(result=result, version=None, qualifying=qualifying)
        final = datasets_dir / result.content_hash[:16]
        _write_manifest(staging, result, query)
        if final.exists():  # same content built before: keep the first copy
            shutil.rmtree(staging)
        else:
            staging.rename(final)
        version = record_dataset(
            engine,
            query.tenant_id,
            _version_row(result, query, final),
            persona_id=query.persona_id,
            last_ts=last_ts,
            records=result.source_records,
        )
        return CollectOutcome(result=result, version=version, qualifying=qualifying)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _build_into(
    staging: Path,
    engine: Engine,
    source: Source,
    query: CollectQuery,
    settings: Settings,
    progress: Progress | None,
) -> tuple[BuildResult, datetime | None]:
    last_ts: datetime | None = None
    read = 0
    with (
        open(staging / "train.jsonl", "w", encoding="utf-8") as train,
        open(staging / "validation.jsonl", "w", encoding="utf-8") as validation,
        open(staging / "examples.meta.jsonl", "w", encoding="utf-8") as meta,
    ):
        options = build_options(settings)
        quotas = (
            cap_quotas(count_by_source(engine, source, query), options.max_share_per_model)
            if options.max_share_per_model < 1.0
            else None
        )
        builder = DatasetBuilder(
            options, {"train": train, "validation": validation, "meta": meta}, quotas=quotas
        )
        for chunk in stream_posts(engine, source, query, chunk_size=settings.pipeline.chunk_size):
            builder.add_all(chunk)
            newest = max(post.ts for post in chunk)
            last_ts = newest if last_ts is None or newest > last_ts else last_ts
            read += len(chunk)
            if progress is not None:
                progress(read)
        return builder.finish(), last_ts


def _write_manifest(staging: Path, result: BuildResult, query: CollectQuery) -> None:
    manifest = result.manifest() | {
        "tenant_id": query.tenant_id,
        "persona_id": query.persona_id,
        "query": {
            "engagement_threshold": query.engagement_threshold,
            "days_back": query.days_back,
            "max_records": query.max_records,
            "window_start": query.window_start.isoformat(),
        },
        "files": {
            "train": "train.jsonl",
            "validation": "validation.jsonl",
            "metadata": "examples.meta.jsonl",
        },
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _version_row(result: BuildResult, query: CollectQuery, path: Path) -> DatasetVersion:
    return DatasetVersion(
        tenant_id=query.tenant_id,
        id=result.content_hash,
        persona_id=query.persona_id,
        path=str(path.resolve()),
        source_records=result.source_records,
        hook_examples=result.counts["hook"],
        body_examples=result.counts["body"],
        train_examples=result.counts["train"],
        validation_examples=result.counts["validation"],
        total_tokens=int(result.tokens["total"]),
        manifest=result.manifest(),
    )


def new_qualifying_since_last(
    engine: Engine,
    settings: Settings,
    tenant_id: str,
    *,
    persona_id: str | None = None,
    now: datetime | None = None,
) -> int:
    """How many qualifying posts arrived after the last collection's newest post."""
    mark = read_watermark(engine, tenant_id, persona_id)
    base = query_from(settings, tenant_id, persona_id=persona_id)
    since = mark.last_ts if mark is not None and mark.last_ts is not None else None
    query = CollectQuery(
        tenant_id=tenant_id,
        engagement_threshold=base.engagement_threshold,
        days_back=base.days_back,
        max_records=None,
        persona_id=persona_id,
        since=since,
        now=now,
    )
    return count_qualifying(engine, Source(settings.source), query)
