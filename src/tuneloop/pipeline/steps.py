"""The pipeline's first half: collect → train → register → evaluate. Each one is idempotent.

A step returns its typed output (``pipeline.outputs``, stored with the step) and may end
the run early with a normal outcome: not enough data, no new data (the dataset is the one
the champion or the last candidate was trained on), or an offline evaluation that gates
the candidate. The second half (experiment → decide → rollout) is in ``pipeline.loop``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuneloop import __version__
from tuneloop.collect.service import collect_dataset, query_from
from tuneloop.domain.runs import RunStatus
from tuneloop.pipeline import training
from tuneloop.pipeline.context import RunContext, StepOutcome
from tuneloop.pipeline.loop import LOOP_STEPS
from tuneloop.pipeline.outputs import CollectOutput, EvaluateOutput, RegisterOutput, TrainOutput
from tuneloop.pipeline.runner import StepFunction
from tuneloop.store import runs as repo
from tuneloop.store.models_registry import (
    champion_of,
    list_model_versions,
    record_model_version,
)

Outputs = dict[str, dict[str, Any]]


def collect_step(ctx: RunContext, outputs: Outputs) -> StepOutcome:
    settings = ctx.settings
    if ctx.config.get("force_run"):  # documented: force_run runs even below the threshold
        pipeline = settings.pipeline.model_copy(update={"training_data_threshold": 1})
        settings = settings.model_copy(update={"pipeline": pipeline})
    # The run's clock, as the data trigger reads it: on a manual or scaled clock, the posts
    # the trigger counted are the ones collected (the wall clock would see another window).
    query = query_from(settings, ctx.tenant_id, now=ctx.clock.now())
    outcome = collect_dataset(ctx.engine, settings, query)
    result = outcome.result
    output: dict[str, Any] = {
        "status": result.status,
        "message": result.message,
        "counts": result.counts,
        "source_records": result.source_records,
        "qualifying": outcome.qualifying,
        "tokens_total": result.tokens["total"],
        "estimated_cost_usd": result.estimated_cost_usd,
        "sources": result.source_report(),
    }
    if outcome.version is None:
        return StepOutcome(CollectOutput(**output).to_json(), final=RunStatus.NOT_ENOUGH_DATA)
    output |= {"dataset_id": outcome.version.id, "path": outcome.version.path}
    same = None if ctx.config.get("force_run") else _trained_on(ctx, outcome.version.id)
    if same is not None:
        output |= {
            "same_data_as": same,
            "message": f"no new data: {same} was trained on this very dataset "
            f"({outcome.version.id[:12]}); force the run to train anyway",
        }
        return StepOutcome(CollectOutput(**output).to_json(), final=RunStatus.NO_NEW_DATA)
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
    return StepOutcome(CollectOutput(**output, mlflow_run_id=mlflow_run_id).to_json())


def _trained_on(ctx: RunContext, dataset_id: str) -> str | None:
    """The champion or the last candidate, if it was trained on ``dataset_id``."""
    latest = list_model_versions(ctx.engine, ctx.tenant_id, limit=1)
    for version in (champion_of(ctx.engine, ctx.tenant_id), *latest):
        if version is not None and version.dataset_id == dataset_id:
            return f"{version.model_id}@{version.version} ({version.status})"
    return None


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
    collected = CollectOutput.of(outputs)
    mlflow_run_id = str(collected.mlflow_run_id)

    # A training resumed from a checkpoint replays the steps after it: MLflow already has
    # the points up to where the last attempt stopped, so only later steps are logged.
    logged = ctx.tracker.last_step(mlflow_run_id, "train_loss")

    def on_step(step: int, total: int | None, loss: float) -> None:
        ctx.report("train_step", {"step": step, "total": total, "loss": loss})
        if logged is None or step > logged:
            ctx.tracker.log_metrics(mlflow_run_id, {"train_loss": loss}, step=step)

    result = TrainOutput.model_validate(
        training.run_training(ctx, dataset_dir=Path(str(collected.path)), on_step=on_step)
    )
    summary = {
        "train_loss": result.train_loss,
        "validation_loss": result.validation_loss,
        "tokens_per_second": result.tokens_per_second,
    }
    ctx.tracker.log_metrics(mlflow_run_id, {k: v for k, v in summary.items() if v is not None})
    return StepOutcome(result.to_json())


def register_step(ctx: RunContext, outputs: Outputs) -> StepOutcome:
    collected, trained = CollectOutput.of(outputs), TrainOutput.of(outputs)
    info = ctx.tracker.register_candidate(
        ctx.tenant_id,
        str(collected.mlflow_run_id),
        Path(trained.adapter_path),
        dataset_hash=str(collected.dataset_id),
        tags=_registry_tags(trained),
    )
    hosted_model = trained.hosted_model  # a hosted fine-tune: no adapter to load here
    record_model_version(
        ctx.engine,
        ctx.tenant_id,
        model_id=info.name,
        version=str(info.version),
        run_id=ctx.run_id,
        training_job_id=trained.job_id,
        dataset_id=collected.dataset_id,
        base_model=trained.base_model,
        adapter_path=None if hosted_model else trained.adapter_path,
        served_model=hosted_model,
        status="challenger",
    )
    repo.update_run(ctx.engine, ctx.tenant_id, ctx.run_id, model_version=str(info.version))
    output = RegisterOutput(model_id=info.name, version=info.version, source=info.source)
    return StepOutcome(output.to_json())


def _registry_tags(trained: TrainOutput) -> dict[str, str]:
    tags = {"tuneloop.training_job_id": trained.job_id, "tuneloop.backend": trained.backend}
    if trained.hosted_model:
        tags["tuneloop.fine_tuned_model"] = trained.hosted_model
        tags["tuneloop.external_job_id"] = str(trained.external_id)
    return tags


def evaluate_step(ctx: RunContext, outputs: Outputs) -> StepOutcome:
    collected, trained = CollectOutput.of(outputs), TrainOutput.of(outputs)
    report = EvaluateOutput.model_validate(
        training.run_evaluation(
            ctx,
            dataset_dir=Path(str(collected.path)),
            adapter_path=Path(trained.adapter_path),
            base_model=trained.base_model,
        )
    )
    mlflow_run_id = str(collected.mlflow_run_id)
    # offline_* names, so they never clash with training's
    ctx.tracker.log_metrics(mlflow_run_id, report.metrics)
    ctx.tracker.end_run(mlflow_run_id, "FINISHED")
    return StepOutcome(report.to_json(), final=None if report.passed else RunStatus.GATED)


FIRST_HALF: dict[str, StepFunction] = {
    "collect": collect_step,
    "train": train_step,
    "register": register_step,
    "evaluate": evaluate_step,
}

# The whole loop, in the order of ``domain.runs.STEPS``.
STEP_FUNCTIONS: dict[str, StepFunction] = FIRST_HALF | LOOP_STEPS
