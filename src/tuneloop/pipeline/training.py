"""The train step's bridge to a training backend: one job per run, resumed, never duplicated.

The job row (keyed by the run) is written before the backend starts, so a retried step
finds it; the backend's ``output_dir`` is the job's identity on disk, so a second call
resumes from the last checkpoint or returns the finished job instead of training again.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from tuneloop.config import TrainingSettings
from tuneloop.pipeline.context import AbortRequested, InterruptRequested, RunContext
from tuneloop.pipeline.hosted_evaluation import hosted_evaluation, is_hosted
from tuneloop.pipeline.warm_start import plan_warm_start
from tuneloop.store.models_registry import champion_of
from tuneloop.store.runs import get_run
from tuneloop.store.training_jobs import (
    finish_training_job,
    mark_training_job,
    open_training_job,
)
from tuneloop.train.tiny import tiny_base_dir


def hyperparameters_from(training: TrainingSettings) -> Any:
    from tuneloop.train.hyperparams import AUTO, Hyperparameters

    def pick(value: Any) -> Any:
        return AUTO if value is None else value

    return Hyperparameters(
        epochs=pick(training.epochs),
        learning_rate=pick(training.learning_rate),
        batch_size=pick(training.batch_size),
        max_length=pick(training.max_length),
        lora_r=training.lora_r or 8,
        seed=training.seed,
    )


def tiny_dir(ctx: RunContext) -> Path:
    return tiny_base_dir(ctx.settings.workspace, ctx.tenant_id)


def quiet_libraries() -> None:
    """Keep transformers/PEFT/TRL's progress bars and advisory warnings out of our output."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"peft\.")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"trl\.")


def open_job_row(
    ctx: RunContext, *, output_dir: Path, base_model: str, hyperparameters: dict[str, Any]
) -> str:
    """Get or create the run's job row, counting the attempt; returns the job id."""
    return open_training_job(
        ctx.engine,
        ctx.tenant_id,
        ctx.run_id,
        backend=ctx.settings.training.backend,
        output_dir=output_dir,
        base_model=base_model,
        hyperparameters=hyperparameters,
    )


def _finish_job(
    ctx: RunContext, *, status: str, result: dict[str, Any] | None, external_id: str | None = None
) -> None:
    finish_training_job(
        ctx.engine,
        ctx.tenant_id,
        ctx.run_id,
        status=status,
        result=result,
        external_id=external_id,
    )


def _interrupt_job(ctx: RunContext) -> None:
    """The job stopped with the server, not for good: the next attempt resumes it."""
    mark_training_job(ctx.engine, ctx.tenant_id, ctx.run_id, "interrupted")


def run_training(ctx: RunContext, *, dataset_dir: Path, on_step: Any) -> dict[str, Any]:
    """Train (or resume, or find finished) the run's candidate; returns the step's output."""
    quiet_libraries()
    from tuneloop.train.backends import base_model_for

    start = plan_warm_start(ctx, base_model_for(ctx.settings))
    trainer = ctx.services.trainer(
        ctx.settings, ctx.tenant_id, run_id=ctx.run_id, init_adapter=start.init_adapter
    )
    hyperparameters = hyperparameters_from(ctx.settings.training)
    output_dir = ctx.workdir / "train"
    base_model = start.base_model
    job_id = open_job_row(
        ctx,
        output_dir=output_dir,
        base_model=base_model,
        hyperparameters=hyperparameters.to_params(),
    )
    mlflow_run_id = get_run(ctx.engine, ctx.tenant_id, ctx.run_id).mlflow_run_id
    if mlflow_run_id:  # lineage: what this candidate was trained from
        ctx.tracker.log_params(mlflow_run_id, start.params())

    def step(progress: Any) -> None:
        on_step(progress.step, progress.total_steps, progress.loss)
        if progress.metrics and mlflow_run_id:  # a hosted job's valid_loss, token accuracy
            ctx.tracker.log_metrics(mlflow_run_id, progress.metrics, step=progress.step)

    job = trainer.train(
        dataset_dir=dataset_dir,
        base_model=base_model,
        hyperparams=hyperparameters,
        output_dir=output_dir,
        on_step=step,
        should_stop=ctx.stop_requested,
    )
    if job.status == "aborted":  # the trainer stopped at a safe point; its checkpoints are kept
        if ctx.abort.is_set():
            _finish_job(ctx, status="cancelled", result=None)
            raise AbortRequested(ctx.run_id)
        _interrupt_job(ctx)
        raise InterruptRequested(ctx.run_id)
    summary = {
        "job_id": job_id,
        "backend": job.backend,
        "base_model": job.base_model,
        "adapter_path": str(job.adapter_path),
        "train_loss": job.train_loss,
        "validation_loss": job.validation_loss,
        "losses": job.losses,
        "tokens_seen": job.tokens_seen,
        "seconds": round(job.duration_seconds, 1),
        "tokens_per_second": round(job.tokens_seen / job.duration_seconds, 1)
        if job.duration_seconds
        else None,
        "device": job.device,
        "hyperparameters": job.hyperparams.to_params(),
        "resumed_from": None if job.resumed_from is None else str(job.resumed_from),
        "external_id": job.external_id,
        "warm_start": start.lineage,
        # A hosted job: the provider's model name, what it billed, its checkpoints.
        "hosted_model": job.details.get("fine_tuned_model"),
        "trained_tokens": job.details.get("trained_tokens"),
        "estimated_cost_usd": job.details.get("estimated_cost_usd"),
    }
    if mlflow_run_id:
        for checkpoint in job.details.get("checkpoints", []):
            metrics = {f"checkpoint_{k}": v for k, v in checkpoint["metrics"].items()}
            ctx.tracker.log_metrics(mlflow_run_id, metrics, step=checkpoint["step"])
    _finish_job(ctx, status="succeeded", result=summary, external_id=job.external_id)
    return summary


def run_evaluation(
    ctx: RunContext, *, dataset_dir: Path, adapter_path: Path, base_model: str
) -> dict[str, Any]:
    """Held-out loss of the candidate vs the champion (or the base model); the gate decides."""
    if is_hosted(adapter_path):  # a hosted model: the provider's measurements (see there)
        return hosted_evaluation(ctx, dataset_dir=dataset_dir, adapter_path=adapter_path)
    quiet_libraries()
    from tuneloop.evaluate import Gate, ModelRef, compare

    champion = champion_of(ctx.engine, ctx.tenant_id)
    if champion is not None and champion.adapter_path and Path(champion.adapter_path).exists():
        reference = ModelRef(
            champion.base_model, Path(champion.adapter_path), f"champion v{champion.version}"
        )
    else:
        reference = ModelRef(base_model, None, "base model")
    report = compare(
        ModelRef(base_model, adapter_path, "candidate"),
        reference,
        dataset_dir / "validation.jsonl",
        gate=Gate(max_loss_increase=ctx.settings.evaluation.max_loss_increase),
    )
    return report.to_json() | {"metrics": report.metrics()}
