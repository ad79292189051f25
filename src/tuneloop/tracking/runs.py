"""Experiments and runs: one experiment per tenant, one run per pipeline run (found by tag).

Functions over a ``Connection``; ``Tracker`` is the public face. Every MLflow call goes
through ``conn.call`` (breaker, retries, error translation). Find-or-create steps run as one
guarded unit, so a retry after a lost response searches again instead of creating twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from tuneloop.errors import ConflictError, InvalidInputError, InvalidStateError
from tuneloop.tracking.buffer import BufferedMetric
from tuneloop.tracking.connection import Connection
from tuneloop.tracking.info import TAG_PIPELINE_RUN_ID, TAG_TENANT
from tuneloop.tracking.naming import checked, experiment_name, tag_filter
from tuneloop.tracking.translate import error_code

if TYPE_CHECKING:
    from mlflow.entities import Run

MAX_METRICS_PER_BATCH = 1000  # MLflow's log_batch limits
MAX_PARAMS_PER_BATCH = 100


def ensure_experiment(conn: Connection, tenant: str) -> str:
    """The id of the tenant's experiment, created on first use."""
    name = experiment_name(conn.prefix, tenant)
    location = f"{conn.artifact_root}/{name}" if conn.artifact_root else None
    client = conn.client

    def get_or_create() -> str:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return client.create_experiment(name, location, tags={TAG_TENANT: tenant})
            except Exception as exc:  # created meanwhile by another process: use theirs
                if error_code(exc) != "RESOURCE_ALREADY_EXISTS":
                    raise
                experiment = client.get_experiment_by_name(name)
                assert experiment is not None
        if experiment.lifecycle_stage != "active":
            raise InvalidStateError(
                f"MLflow experiment {name!r} is deleted; restore it "
                f"(mlflow experiments restore --experiment-id {experiment.experiment_id})"
            )
        return str(experiment.experiment_id)

    return conn.call("get or create experiment", get_or_create)


def start_run(
    conn: Connection,
    experiment_id: str,
    *,
    tenant: str,
    pipeline_run_id: str,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
) -> str:
    """The run of ``pipeline_run_id``: found by its tag if a try before created it."""
    checked("pipeline run id", pipeline_run_id)
    client = conn.client
    all_tags = {**tags, TAG_PIPELINE_RUN_ID: pipeline_run_id, TAG_TENANT: tenant}

    def find_or_create() -> Run:
        found = _find_run(conn, experiment_id, pipeline_run_id)
        if found is not None:
            return found
        # Run ids count per tenant: the tenant in the name keeps it unique across tenants too.
        run_name = f"{tenant}-{pipeline_run_id}"
        return client.create_run(experiment_id, tags=all_tags, run_name=run_name)

    run = conn.call("find or create run", find_or_create)
    run_id = str(run.info.run_id)
    _check_params_unchanged(run, params, pipeline_run_id)
    log_params(conn, run_id, params)
    if run.info.status != "RUNNING":  # a retried step resumes its run
        conn.call("reopen run", lambda: client.update_run(run_id, status="RUNNING"))
    return run_id


def _find_run(conn: Connection, experiment_id: str, pipeline_run_id: str) -> Run | None:
    runs = conn.client.search_runs(
        [experiment_id],
        filter_string=tag_filter(TAG_PIPELINE_RUN_ID, pipeline_run_id),
        max_results=1,
        order_by=["attributes.start_time ASC"],
    )
    return runs[0] if runs else None


def _check_params_unchanged(run: Run, params: Mapping[str, Any], pipeline_run_id: str) -> None:
    """MLflow params are write-once; say which one a retry tried to change, and how."""
    logged = run.data.params
    for key, value in params.items():
        if key in logged and logged[key] != str(value):
            raise ConflictError(
                f"pipeline run {pipeline_run_id} already logged {key}={logged[key]!r}, "
                f"not {str(value)!r}"
            )


def log_params(conn: Connection, run_id: str, params: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(str(key), str(value)) for key, value in params.items()]
    for start in range(0, len(items), MAX_PARAMS_PER_BATCH):
        chunk = items[start : start + MAX_PARAMS_PER_BATCH]
        conn.call("log params", partial(conn.client.log_batch, run_id, params=chunk))


def log_metric_batch(conn: Connection, run_id: str, entries: Sequence[BufferedMetric]) -> None:
    """Log metric points of one run (at most ``MAX_METRICS_PER_BATCH``) in one request."""
    from mlflow.entities import Metric

    if len(entries) > MAX_METRICS_PER_BATCH:
        raise InvalidInputError(f"at most {MAX_METRICS_PER_BATCH} metrics per batch")
    metrics = [Metric(e.key, e.value, e.timestamp_ms, e.step) for e in entries]
    conn.call("log metrics", lambda: conn.client.log_batch(run_id, metrics=metrics))


def batches_by_run(
    entries: Sequence[BufferedMetric],
) -> Iterator[tuple[str, list[BufferedMetric]]]:
    """Consecutive entries of the same run, in order, at most one batch each."""
    batch: list[BufferedMetric] = []
    for entry in entries:
        if batch and (entry.run_id != batch[0].run_id or len(batch) == MAX_METRICS_PER_BATCH):
            yield batch[0].run_id, batch
            batch = []
        batch.append(entry)
    if batch:
        yield batch[0].run_id, batch


def last_step(conn: Connection, run_id: str, key: str) -> int | None:
    """The highest step logged for metric ``key`` of the run (None: none yet)."""
    history = conn.call("get metric history", lambda: conn.client.get_metric_history(run_id, key))
    return max((metric.step for metric in history), default=None)


def run_tags(conn: Connection, run_id: str) -> dict[str, str]:
    run = conn.call("get run", lambda: conn.client.get_run(run_id))
    return dict(run.data.tags)
