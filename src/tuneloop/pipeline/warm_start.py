"""Where a run's training starts: the base model, or the champion (``training.init``).

With ``init = "champion"`` a run continues from the current champion — its LoRA adapter for
the local and Ray backends, its ``ft:`` model for the hosted one — so each cycle builds on
the last. Every ``base_every``-th cycle in a row starts from the base again, so errors do not
compound forever. The decision (``lineage``) is stored in the train step's output and logged
to MLflow (``training.init``, ``training.init_from``, ``training.warm_start_depth``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneloop.pipeline.context import RunContext
from tuneloop.store.models_registry import champion_of
from tuneloop.store.pipeline_models import ModelVersion
from tuneloop.store.training_jobs import get_training_job
from tuneloop.train.tiny import TINY, tiny_base_dir


@dataclass(frozen=True)
class WarmStart:
    base_model: str
    init_adapter: Path | None
    lineage: dict[str, Any]

    def params(self) -> dict[str, Any]:
        return {
            "training.init": self.lineage["init"],
            "training.init_from": self.lineage.get("from") or "base",
            "training.warm_start_depth": self.lineage["depth"],
        }


def plan_warm_start(ctx: RunContext, base_model: str) -> WarmStart:
    """Decide, for this run, what training starts from (see the module docstring)."""
    training = ctx.settings.training

    def cold(reason: str) -> WarmStart:
        return WarmStart(base_model, None, {"init": "base", "depth": 0, "reason": reason})

    if training.init == "base":
        return cold("training.init is base")
    champion = champion_of(ctx.engine, ctx.tenant_id)
    if champion is None:
        return cold("no champion yet")
    depth = _depth_of(ctx, champion) + 1
    if depth >= training.base_every:
        return cold(f"every {training.base_every}th cycle in a row starts from the base")
    lineage: dict[str, Any] = {
        "init": "champion",
        "from": f"{champion.model_id}@{champion.version}",
    }
    lineage |= {"depth": depth, "reason": "training.init is champion"}
    if training.backend == "openai":
        if not champion.served_model:
            return cold("the champion is not a hosted model")
        return WarmStart(champion.served_model, None, lineage)
    adapter = Path(champion.adapter_path) if champion.adapter_path else None
    if adapter is None or not adapter.is_dir():
        return cold("the champion has no adapter here")
    if champion.base_model != _resolved(ctx, base_model):
        return cold(f"the champion was trained on {champion.base_model}, not {base_model}")
    return WarmStart(base_model, adapter, lineage)


def _depth_of(ctx: RunContext, champion: ModelVersion) -> int:
    """How many warm starts in a row led to the champion (0: it started from the base)."""
    if champion.run_id is None:
        return 0
    job = get_training_job(ctx.engine, ctx.tenant_id, champion.run_id)
    warm = ((job.result or {}) if job is not None else {}).get("warm_start") or {}
    return int(warm.get("depth", 0))


def _resolved(ctx: RunContext, base_model: str) -> str:
    """The base as a finished job records it (``tiny`` is the tenant's built base's path)."""
    if base_model == TINY:
        return str(tiny_base_dir(ctx.settings.workspace, ctx.tenant_id).resolve())
    return base_model
