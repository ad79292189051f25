"""The offline gate for a candidate trained by a hosted API, whose weights we never hold.

A hosted model cannot be scored here token by token, so the gate reads what the provider
measured: the job's final validation loss (``full_valid_loss`` of its last checkpoint, else
``valid_loss``). Against a champion that was trained the same way, it is compared with that
champion's job validation loss. Otherwise there is no comparable reference (a local model's
loss is in another tokenizer; the base model's is not reported), and the report says so and
uses the job's own first reported validation loss as the reference: the fine-tune must have
learned. The report has the shape of the local one (``passed``, ``reason``, ``metrics``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tuneloop.pipeline.context import RunContext
from tuneloop.store.models_registry import champion_of
from tuneloop.store.training_jobs import get_training_job
from tuneloop.train.port import TrainingJob
from tuneloop.train.workdir import JOB

HOSTED_MODEL_FILE = "hosted_model.json"


def is_hosted(adapter_path: Path) -> bool:
    return (adapter_path / HOSTED_MODEL_FILE).is_file()


def hosted_evaluation(ctx: RunContext, *, dataset_dir: Path, adapter_path: Path) -> dict[str, Any]:
    from tuneloop.evaluate.report import Gate, LossMeasurement, judge

    job = TrainingJob.from_json(json.loads((adapter_path.parent / JOB).read_text("utf-8")))
    examples = _count_lines(dataset_dir / "validation.jsonl")
    tokens = max(1, job.tokens_seen)
    candidate = job.validation_loss
    champion = _champion_loss(ctx)
    reference: float | None
    if champion is not None:
        reference, label = champion
        basis = "the champion's hosted job validation loss"
    else:
        reference, label = _first_validation_loss(job), "this job's first validation loss"
        basis = (
            "no comparable champion loss (the champion was not trained by the hosted API, or "
            "there is none; a base model's loss is not reported): the job's final validation "
            "loss against its own first one"
        )
    if candidate is None or reference is None:
        return {
            "status": "no_data",
            "passed": False,
            "reason": "the hosted job reported no validation loss to gate on",
            "gate_basis": basis,
            "metrics": {"offline_passed": 0.0},
        }
    report = judge(
        LossMeasurement(candidate, tokens, examples),
        LossMeasurement(reference, tokens, examples),
        Gate(max_loss_increase=ctx.settings.evaluation.max_loss_increase),
        candidate_name="candidate (hosted job validation loss)",
        reference_name=label,
    )
    return report.to_json() | {"metrics": report.metrics(), "gate_basis": basis}


def _champion_loss(ctx: RunContext) -> tuple[float, str] | None:
    champion = champion_of(ctx.engine, ctx.tenant_id)
    if champion is None or champion.run_id is None:
        return None
    row = get_training_job(ctx.engine, ctx.tenant_id, champion.run_id)
    loss = (row.result or {}).get("validation_loss") if row is not None else None
    if row is None or row.backend != "openai" or not isinstance(loss, int | float):
        return None
    return float(loss), f"champion v{champion.version} (its hosted job validation loss)"


def _first_validation_loss(job: TrainingJob) -> float | None:
    """The earliest validation loss the job reported: a step's, else a checkpoint's."""
    for step in job.steps:
        value = step.metrics.get("valid_loss")
        if value is not None and math.isfinite(value):
            return value
    for checkpoint in job.details.get("checkpoints", []):
        if "valid_loss" in checkpoint.get("metrics", {}):
            return float(checkpoint["metrics"]["valid_loss"])
    return None


def _count_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    with path.open(encoding="utf-8") as lines:
        return sum(1 for line in lines if line.strip())
