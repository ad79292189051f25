"""Test helper shared by the rollout and API tests: register a model version for real.

A small folder of files stands in for a LoRA adapter; it is logged to the embedded MLflow,
registered (alias ``challenger``) and recorded in tuneloop's own table.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from tuneloop.store.models_registry import record_model_version
from tuneloop.tracking import Tracker


def register_version(
    engine: Engine, tracker: Tracker, folder: Path, run: str, *, tenant: str
) -> str:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text('{"r": 8}', encoding="utf-8")
    (folder / "adapter_model.safetensors").write_bytes(bytes(range(256)))
    run_id = tracker.start_run(tenant, run)
    info = tracker.register_candidate(tenant, run_id, folder, dataset_hash=f"sha256-{run}")
    record_model_version(
        engine,
        tenant,
        model_id=info.name,
        version=str(info.version),
        run_id=run,
        base_model="tiny",
        adapter_path=str(folder),
        status="challenger",
    )
    return str(info.version)
