"""A training job's output directory: its identity, checkpoints, result, and cleanup.

Layout (the local backend's; others may keep less)::

    output_dir/
      request.json        what was asked (dataset fingerprint, base model, hyperparameters)
      checkpoint-<step>/  one per epoch; complete once trainer_state.json is written
      adapter/            the final LoRA adapter and tokenizer (written to a staging dir,
                          then renamed)
      job.json            the finished TrainingJob

The directory is the job's identity: a second call with the same request resumes or
returns the finished job; with a different request it is refused (ConflictError).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from tuneloop.errors import ConflictError
from tuneloop.train.port import AbortPolicy, TrainingJob

REQUEST, JOB, ADAPTER, STAGING_PREFIX = "request.json", "job.json", "adapter", ".staging-"
CHECKPOINT_PREFIX = "checkpoint-"
COMPLETE_MARKER = "trainer_state.json"  # written last by transformers' Trainer


def dataset_fingerprint(dataset_dir: Path) -> str:
    """The dataset's content hash (from its manifest), else a hash of its JSONL files."""
    manifest = dataset_dir / "manifest.json"
    if manifest.is_file():
        content_hash = json.loads(manifest.read_text(encoding="utf-8")).get("content_hash")
        if content_hash:
            return str(content_hash)
    digest = hashlib.sha256()
    for name in ("train.jsonl", "validation.jsonl"):
        path = dataset_dir / name
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def claim(output_dir: Path, request: dict[str, Any], *, resume: bool) -> None:
    """Make ``output_dir`` this request's: refuse another job's, wipe it when not resuming."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / REQUEST
    if path.is_file() and resume:
        existing = json.loads(path.read_text(encoding="utf-8"))
        if existing != request:
            raise ConflictError(f"{output_dir} holds another training job; use a new output_dir")
    if not resume:
        for entry in output_dir.iterdir():
            _remove(entry)
    path.write_text(json.dumps(request, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def finished_job(output_dir: Path) -> TrainingJob | None:
    path = output_dir / JOB
    if not path.is_file():
        return None
    job = TrainingJob.from_json(json.loads(path.read_text(encoding="utf-8")))
    if job.status != "succeeded" or job.adapter_path is None or not job.adapter_path.is_dir():
        return None
    return job


def complete_checkpoints(output_dir: Path) -> list[Path]:
    """Checkpoints whose writing finished, oldest first."""
    found = [
        path
        for path in output_dir.glob(f"{CHECKPOINT_PREFIX}*")
        if path.is_dir() and _complete(path) and _step(path) is not None
    ]
    return sorted(found, key=lambda path: _step(path) or 0)


def _complete(checkpoint: Path) -> bool:
    """Its marker exists *and* parses: a kill while the marker was being written leaves
    an empty or cut file, and resuming from it fails (JSONDecodeError)."""
    marker = checkpoint / COMPLETE_MARKER
    try:
        json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def remove_partial(output_dir: Path) -> list[Path]:
    """Delete half-written checkpoints and staging directories; returns what went."""
    removed = []
    for path in output_dir.iterdir() if output_dir.is_dir() else []:
        partial = path.name.startswith(CHECKPOINT_PREFIX) and not _complete(path)
        if partial or path.name.startswith(STAGING_PREFIX):
            _remove(path)
            removed.append(path)
    return removed


def publish(staging: Path, output_dir: Path) -> Path:
    """Move a finished adapter from ``staging`` to ``output_dir/adapter`` (replacing it)."""
    final = output_dir / ADAPTER
    if final.exists():
        _remove(final)
    staging.rename(final)
    return final


def after_abort(output_dir: Path, policy: AbortPolicy) -> tuple[Path, ...]:
    """Clean up after an abort; returns what is left on disk (for the job's report)."""
    remove_partial(output_dir)
    if policy == "delete":
        shutil.rmtree(output_dir, ignore_errors=True)
        return ()
    return tuple(sorted(output_dir.iterdir())) if output_dir.is_dir() else ()


def _step(path: Path) -> int | None:
    tail = path.name.removeprefix(CHECKPOINT_PREFIX)
    return int(tail) if tail.isdigit() else None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
