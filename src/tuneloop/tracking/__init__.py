"""Experiment tracking and the model registry, on MLflow — the only package that imports it.

Importing ``tuneloop.tracking`` does not import mlflow (seconds); a ``Tracker`` does, on its
first call. Public API::

    Tracker(tracking_uri, *, experiment_prefix="tuneloop", artifact_root=None,
            buffer=None, breaker=None, retry=RetryPolicy())
      .experiment_id(tenant) -> str                          # "{prefix}-{tenant}", on demand
      .start_run(tenant, pipeline_run_id, *, params=None, tags=None) -> str   # idempotent
      .log_params(run_id, params) -> None
      .log_metrics(run_id, {name: value}, *, step=None) -> "logged" | "buffered"
      .flush() -> FlushResult
      .log_artifacts(run_id, local_dir, artifact_path=None) -> None
      .log_dict(run_id, data, artifact_file) / .log_text(run_id, text, artifact_file)
      .end_run(run_id, status="FINISHED") -> None            # FINISHED | FAILED | KILLED
      .register_candidate(tenant, run_id, adapter_dir, *, dataset_hash, tags=None)
          -> ModelVersionInfo                                # idempotent; alias "challenger"
      .promote(tenant, version) -> Promotion                 # alias "champion"; .previous
      .get_alias(tenant, alias) -> ModelVersionInfo | None
      .get_version(tenant, version) -> ModelVersionInfo
      .list_versions(tenant) -> list[ModelVersionInfo]
      .download_adapter(tenant, version, dst) -> Path
      .breaker -> CircuitBreaker                             # state for /health and metrics
    MetricBuffer(path=None)          # JSONL file (survives restarts) or memory
    ui_command(tracking_uri) -> str  # "mlflow ui --backend-store-uri sqlite:////..."

Wiring, for example::

    Tracker(settings.mlflow_tracking_uri,
            experiment_prefix=settings.mlflow.experiment_name,
            buffer=MetricBuffer(settings.workspace / "mlflow-metrics-buffer.jsonl"))

Errors: ``ExternalServiceError`` when MLflow is unavailable (subclasses
``TrackingUnavailableError`` after retries, ``CircuitOpenError`` while the breaker is open),
``NotFoundError``/``ConflictError`` when MLflow answered so, ``InvalidInputError`` for bad
tenants, ids or adapter folders.
"""

from tuneloop.resilience.breaker import CircuitOpenError
from tuneloop.tracking.buffer import BufferedMetric, MetricBuffer
from tuneloop.tracking.guard import RetryPolicy
from tuneloop.tracking.info import (
    CHALLENGER,
    CHAMPION,
    Delivery,
    FlushResult,
    ModelVersionInfo,
    Promotion,
    RunStatus,
)
from tuneloop.tracking.tracker import Tracker
from tuneloop.tracking.translate import TrackingUnavailableError
from tuneloop.tracking.ui import ui_command

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "BufferedMetric",
    "CircuitOpenError",
    "Delivery",
    "FlushResult",
    "MetricBuffer",
    "ModelVersionInfo",
    "Promotion",
    "RetryPolicy",
    "RunStatus",
    "Tracker",
    "TrackingUnavailableError",
    "ui_command",
]
