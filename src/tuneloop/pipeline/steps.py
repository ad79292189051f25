"""The pipeline's steps: collect → train → register → evaluate. Each one is idempotent.

A step returns its output (stored with the step) and may end the run early with a
normal outcome: not enough data, or an offline evaluation that gates the candidate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuneloop import __version__
from tuneloop.collect.service import collect_dataset, query_from
from tuneloop.domain.runs import RunStatus
from tuneloop.pipeline import training
from tuneloop.pipeline.context import RunContext, StepOutcome
from tuneloop.pipeline.runner import StepFunction
from tuneloop.store import runs as repo
from tuneloop.store.models_registry import record_model_version

Outputs = dict[str, dict[str, Any]]


def collect_step(ctx: RunContext, outputs: Outputs) -> StepOutcome:
    settings = ctx.settings
    if ctx.config.get("force_run"):  # documented: force_run runs even below the threshold
        pipeline = settings.pipeline.model_copy(update={"training_data_threshold": 1})
        settings = settings.model_copy(update={"pipeline": pipeline})
    outcome = collect_dataset(ctx.engine, settings, query_from(settings, ctx.tenant_id))
    result = outcome.result
    output: dict[str, Any] = {
        "status": result.status,
        "message": result.message,
        "counts": result.counts,
        "source_records": result.source_records,
        "qualifying": outcome.qualifying,
        "tokens_total": result.tokens["total"],
        "estimated_cost_usd": result.estimated_cost_usd,
    }
    if outcome.version is None:
        return StepOutcome(output, final=RunStatus.NOT_ENOUGH_DATA)
    output |= {"dataset_id": outcome.version.id, "path": outcome.version.path}
    mlflow_run_id = ctx.tracker.start_run(
        ctx.tenant_id,
        ctx.run_id,
        params=_params(ctx, outcome.version.id),
        tags={"tuneloop.trigger": str(ctx.config.get("trigger", "manual"))},
    )
    ctx.tracker.log_dict(mlflow_run_id, outcome.version.manifest, "dataset/manifest.json")
    repo.update_run(
        ctx.engine,
        ctx.tenant_id,
        ctx.run_id,
        dataset_id=outcome.version.id,
        mlflow_run_id=mlflow_run_id,
    )
    return StepOutcome(output | {"mlflow_run_id": mlflow_run_id})


def _params(ctx: RunContext, dataset_id: str) -> dict[str, Any]:
    flat: dict[str, Any] = {
        "dataset_hash": dataset_id,
        "code_version": __version__,
        "base_model": ctx.settings.training.base_model,
    }
    for section in ("pipeline", "training", "evaluation"):
        for key, value in ctx.config.get(section, {}).items():
            flat[f"{section}.{key}"] = value
    return flat


def train_step(ctx: RunContext, outputs: Outputs) -> StepOutcome:
    collected = outputs["collect"]
    mlflow_run_id = collected["mlflow_run_id"]

    # A training resumed from a checkpoint replays the steps after it: MLflow already has
    # the points up to where the last attempt stopped, so only later steps are logged.
    logged = ctx.tracker.last_step(mlflow_run_id, "train_loss")

    def on_step(step: int, total: int | None, loss: float) -> None:
        ctx.report("train_step", {"step": step, "total": total, "loss": loss})
        if logged is None or step > logged:
            ctx.tracker.log_metrics(mlflow_run_id, {"train_loss": loss}, step=step)

    result = training.run_training(ctx, dataset_dir=Path(collected["path"]), on_step=on_step)
    ctx.tracker.log_metrics(
        mlflow_run_id,
        {
            k: v
            for k, v in result.items()
            if k in ("train_loss", "validation_loss", "tokens_per_second") and v is not None
        },
    )
    return StepOutcome(result)


def register_step(ctx: RunContext, outputs: Outputs) -> StepOutcome:
    collected, trained = outputs["collect"], outputs["train"]
    info = ctx.tracker.register_candidate(
        ctx.tenant_id,
        collected["mlflow_run_id"],
        Path(trained["adapter_path"]),
        dataset_hash=collected["dataset_id"],
        tags=_registry_tags(trained),
    )
    hosted_model = trained.get("hosted_model")  # a hosted fine-tune: no adapter to load here
    record_model_version(
        ctx.engine,
        ctx.tenant_id,
        model_id=info.name,
        version=str(info.version),
        run_id=ctx.run_id,
        training_job_id=trained["job_id"],
        dataset_id=collected["dataset_id"],
        base_model=trained["base_model"],
        adapter_path=None if hosted_model else trained["adapter_path"],
        served_model=hosted_model,
        status="challenger",
    )
    repo.update_run(ctx.engine, ctx.tenant_id, ctx.run_id, model_version=str(info.version))
    return StepOutcome({"model_id": info.name, "version": info.version, "source": info.source})


def _registry_tags(trained: dict[str, Any]) -> dict[str, str]:
    tags = {"tuneloop.training_job_id": trained["job_id"], "tuneloop.backend": trained["backend"]}
    if trained.get("hosted_model"):
        tags["tuneloop.fine_tuned_model"] = trained["hosted_model"]
        tags["tuneloop.external_job_id"] = str(trained.get("external_id"))
    return tags


def evaluate_step(ctx: RunContext, outputs: Outputs) -> StepOutcome:
    collected, trained = outputs["collect"], outputs["train"]
    report = training.run_evaluation(
        ctx,
        dataset_dir=Path(collected["path"]),
        adapter_path=Path(trained["adapter_path"]),
        base_model=trained["base_model"],
    )
    mlflow_run_id = collected["mlflow_run_id"]
    metrics = report["metrics"]  # offline_* names, so they never clash with training's
    ctx.tracker.log_metrics(mlflow_run_id, metrics)
    ctx.tracker.end_run(mlflow_run_id, "FINISHED")
    return StepOutcome(report, final=None if report["passed"] else RunStatus.GATED)


STEP_FUNCTIONS: dict[str, StepFunction] = {
    "collect": collect_step,
    "train": train_step,
    "register": register_step,
    "evaluate": evaluate_step,
}
