"""``Tracker``: tuneloop's one handle on MLflow — runs, metrics, artifacts, the registry.

Built from a tracking URI and an experiment prefix; connects (and imports mlflow) on first
use. Every call passes a circuit breaker (5 failures open it for 60 s) and retries
transient errors 3 times with exponential backoff. Only metrics are buffered while MLflow is
unavailable (``log_metrics`` returns ``"buffered"``; flushed on the next call that reaches
MLflow, on ``end_run``, or by ``flush()``); everything else raises ``ExternalServiceError``
(``TrackingUnavailableError`` or ``CircuitOpenError``), which a retried pipeline step
survives because ``start_run`` and ``register_candidate`` are idempotent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuneloop.errors import InvalidInputError, NotFoundError, TuneloopError
from tuneloop.resilience.breaker import CircuitBreaker, CircuitOpenError
from tuneloop.tracking import registry, runs
from tuneloop.tracking.buffer import BufferedMetric, MetricBuffer
from tuneloop.tracking.connection import Connection, default_artifact_root, open_client
from tuneloop.tracking.guard import MlflowGuard, RetryPolicy
from tuneloop.tracking.info import Delivery, FlushResult, ModelVersionInfo, Promotion, RunStatus
from tuneloop.tracking.naming import checked
from tuneloop.tracking.translate import TrackingUnavailableError

log = logging.getLogger(__name__)
_UNAVAILABLE = (TrackingUnavailableError, CircuitOpenError)


class Tracker:
    def __init__(
        self,
        tracking_uri: str,
        *,
        experiment_prefix: str = "tuneloop",
        artifact_root: str | Path | None = None,
        buffer: MetricBuffer | None = None,
        breaker: CircuitBreaker | None = None,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        """``artifact_root``: where new experiments keep artifacts (a path or URI); default
        ``mlartifacts/`` next to a SQLite store, the server's choice for an HTTP one."""
        self.tracking_uri = tracking_uri
        self.prefix = checked("experiment prefix", experiment_prefix)
        root = artifact_root or default_artifact_root(tracking_uri)
        self.artifact_root = Path(root).resolve().as_uri() if isinstance(root, Path) else root
        self.buffer = buffer if buffer is not None else MetricBuffer()
        self.guard = MlflowGuard(breaker, retry)
        self._conn: Connection | None = None
        self._experiments: dict[str, str] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()

    @property
    def breaker(self) -> CircuitBreaker:
        return self.guard.breaker

    # --- runs -------------------------------------------------------------------------

    def experiment_id(self, tenant: str) -> str:
        """The tenant's experiment (``{prefix}-{tenant}``), created on first use."""
        if tenant not in self._experiments:
            self._experiments[tenant] = runs.ensure_experiment(self._connection(), tenant)
        return self._experiments[tenant]

    def start_run(
        self,
        tenant: str,
        pipeline_run_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """The MLflow run id of this pipeline run; a second call finds the same run."""
        return runs.start_run(
            self._connection(),
            self.experiment_id(tenant),
            tenant=tenant,
            pipeline_run_id=pipeline_run_id,
            params=params or {},
            tags=tags or {},
        )

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        runs.log_params(self._connection(), run_id, params)

    def last_step(self, run_id: str, key: str) -> int | None:
        """The highest step already logged for ``key`` (so a resumed training logs each step
        once); None when there is none or MLflow cannot say (then every step is logged),
        counting the steps still in this process's buffer."""
        buffered = [m.step for m in self.buffer.pending() if m.run_id == run_id and m.key == key]
        try:
            logged = runs.last_step(self._connection(), run_id, key)
        except TuneloopError as exc:
            log.warning("cannot read the metric history of %s: %s", key, exc)
            logged = None
        found = [step for step in (logged, max(buffered, default=None)) if step is not None]
        return max(found, default=None)

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, float], *, step: int | None = None
    ) -> Delivery:
        """Log metrics in one batch, or buffer them while MLflow is unavailable."""
        now_ms = int(time.time() * 1000)
        entries = [
            BufferedMetric(run_id, key, float(value), now_ms, step or 0)
            for key, value in metrics.items()
        ]
        if len(self.buffer) and self.flush().remaining:  # still down: keep the order
            self.buffer.append(entries)
            return "buffered"
        try:
            for batch_run, batch in runs.batches_by_run(entries):
                runs.log_metric_batch(self._connection(), batch_run, batch)
        except _UNAVAILABLE as exc:
            # Warn once per outage, not on every training step.
            level = logging.DEBUG if len(self.buffer) else logging.WARNING
            log.log(level, "mlflow unavailable, buffering %d metrics: %s", len(entries), exc)
            self.buffer.append(entries)
            return "buffered"
        return "logged"

    def flush(self) -> FlushResult:
        """Send buffered metrics, oldest first, until done or MLflow is unavailable again."""
        with self._flush_lock:
            delivered = dropped = 0
            for run_id, batch in runs.batches_by_run(self.buffer.pending()):
                try:
                    runs.log_metric_batch(self._connection(), run_id, batch)
                except _UNAVAILABLE:
                    break
                except (NotFoundError, InvalidInputError) as exc:  # would block the rest forever
                    log.warning(
                        "dropping %d buffered metrics of run %s: %s", len(batch), run_id, exc
                    )
                    dropped += len(batch)
                except TuneloopError as exc:  # e.g. permissions: keep them, an operator can fix it
                    log.warning("cannot flush buffered metrics: %s", exc)
                    break
                else:
                    delivered += len(batch)
            self.buffer.discard_first(delivered + dropped)
            return FlushResult(delivered, dropped, remaining=len(self.buffer))

    def log_artifacts(self, run_id: str, local_dir: Path, artifact_path: str | None = None) -> None:
        conn = self._connection()
        conn.call(
            "log artifacts",
            lambda: conn.client.log_artifacts(run_id, str(local_dir), artifact_path),
        )

    def log_dict(self, run_id: str, data: Mapping[str, Any], artifact_file: str) -> None:
        """Store ``data`` as a JSON (or YAML, by suffix) file in the run, e.g. a manifest."""
        conn = self._connection()
        conn.call("log dict", lambda: conn.client.log_dict(run_id, dict(data), artifact_file))

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        conn = self._connection()
        conn.call("log text", lambda: conn.client.log_text(run_id, text, artifact_file))

    def end_run(self, run_id: str, status: RunStatus = "FINISHED") -> None:
        """Flush what can be flushed, then mark the run ended."""
        if len(self.buffer):
            self.flush()
        conn = self._connection()
        conn.call("end run", lambda: conn.client.set_terminated(run_id, status))

    # --- registry -----------------------------------------------------------------------

    def register_candidate(
        self,
        tenant: str,
        run_id: str,
        adapter_dir: Path,
        *,
        dataset_hash: str,
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersionInfo:
        """Register the adapter as a version of ``{prefix}-{tenant}``, alias ``challenger``.

        Logs ``adapter_dir`` under ``adapter/`` in the run; the version's source is
        ``runs:/{run_id}/adapter``. A retry for the same pipeline run returns the same version.
        """
        return registry.register_candidate(
            self._connection(),
            tenant,
            run_id,
            adapter_dir,
            dataset_hash=dataset_hash,
            tags=tags or {},
        )

    def promote(self, tenant: str, version: int) -> Promotion:
        """Point ``champion`` at ``version``; ``.previous`` is the version to roll back to."""
        return registry.promote(self._connection(), tenant, version)

    def clear_alias(self, tenant: str, alias: str, version: int) -> bool:
        """Remove ``alias`` when it points at ``version`` (e.g. ``challenger`` once decided)."""
        return registry.clear_alias(self._connection(), tenant, alias, version)

    def get_alias(self, tenant: str, alias: str) -> ModelVersionInfo | None:
        return registry.get_alias(self._connection(), tenant, alias)

    def get_version(self, tenant: str, version: int) -> ModelVersionInfo:
        return registry.get_version(self._connection(), tenant, version)

    def list_versions(self, tenant: str) -> list[ModelVersionInfo]:
        return registry.list_versions(self._connection(), tenant)

    def download_adapter(self, tenant: str, version: int, dst: Path) -> Path:
        """Download a registered version's adapter under ``dst``; returns its folder."""
        return registry.download_adapter(self._connection(), tenant, version, dst)

    def _connection(self) -> Connection:
        with self._lock:
            if self._conn is None:
                client = open_client(self.tracking_uri)
                self._conn = Connection(
                    client, self.guard, self.tracking_uri, self.prefix, self.artifact_root
                )
            return self._conn
