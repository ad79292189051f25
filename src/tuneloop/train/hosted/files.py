"""A hosted job's files: the dataset uploaded once (purpose ``fine-tune``), then processed.

The uploaded ids are kept in the job's state file (``output_dir/hosted_job.json``) with the
job id, so a resumed attempt neither uploads again nor loses track of what it created.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneloop.errors import TrainingError
from tuneloop.train.port import ShouldStop

if TYPE_CHECKING:
    from tuneloop.train.hosted.trainer import HostedTrainer

STATE = "hosted_job.json"
PARTS = (("training_file", "train.jsonl"), ("validation_file", "validation.jsonl"))


def load_state(output_dir: Path | None) -> dict[str, Any]:
    path = None if output_dir is None else output_dir / STATE
    if path is None or not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def save_state(output_dir: Path, values: dict[str, Any]) -> None:
    """Merge ``values`` into the state file, atomically (a crash leaves the old or the new)."""
    state = load_state(output_dir) | values
    tmp = output_dir / f".{STATE}.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    tmp.replace(output_dir / STATE)


def upload_dataset(
    owner: HostedTrainer, dataset_dir: Path, output_dir: Path, stop: ShouldStop
) -> dict[str, str | None] | None:
    """Upload what is not uploaded yet and wait until processed; None if asked to stop."""
    client, state = owner.client, load_state(output_dir)
    ids: dict[str, str | None] = {}
    for key, name in PARTS:
        path = dataset_dir / name
        if not path.is_file() or path.stat().st_size == 0:
            ids[key] = None
            continue
        file_id = state.get(key)
        if not file_id:
            created = owner.api.call(f"upload {name}", _uploader(client, name, path))
            file_id = str(created.id)
            save_state(output_dir, {key: file_id})
        ids[key] = file_id
    if _wait_processed(owner, [i for i in ids.values() if i], stop):
        return ids
    return None


def _wait_processed(owner: HostedTrainer, pending: list[str], stop: ShouldStop) -> bool:
    began, interval = owner.clock.now(), owner.poll.initial_s
    while pending:
        if stop():
            return False
        for file_id in list(pending):
            found = owner.api.call("retrieve file", _retriever(owner.client, file_id))
            if found.status == "processed":
                pending.remove(file_id)
            elif found.status == "error":
                details = getattr(found, "status_details", None) or "no details"
                raise TrainingError(f"the provider rejected file {file_id}: {details}")
        if not pending:
            return True
        if (owner.clock.now() - began).total_seconds() >= owner.poll.stuck_after_s:
            raise TrainingError(f"files {', '.join(pending)} were not processed in time")
        owner.sleep(owner.jittered(interval))
        interval = min(owner.poll.max_s, interval * owner.poll.growth)
    return True


def _uploader(client: Any, name: str, path: Path) -> Callable[[], Any]:
    return lambda: client.files.create(file=(name, path.read_bytes()), purpose="fine-tune")


def _retriever(client: Any, file_id: str) -> Callable[[], Any]:
    return lambda: client.files.retrieve(file_id)
