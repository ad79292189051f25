"""The status answer encoded straight from the view is StatusOut's JSON, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tuneloop.api.schemas.fine_tuning import StatusOut, status_json
from tuneloop.app.status import status_view
from tuneloop.app.views import (
    MemoryView,
    ModelVersionView,
    StatusMetrics,
    StatusView,
    StepView,
    TrainingDataView,
    TrainingProgress,
)
from tuneloop.domain.runs import STEPS
from tuneloop.store.run_snapshot import JobRow, ModelRow, RunRow, RunSnapshot, StepRow

NOW = datetime(2026, 12, 5, 12, 0, 0, 250_000, tzinfo=UTC)
STARTED = NOW - timedelta(minutes=42)
OUTPUTS = {
    "collect": {"status": "ok", "counts": {"hook": 3, "body": 4, "train": 6}, "source_records": 7},
    "train": {
        "job_id": "j",
        "backend": "local",
        "base_model": "tiny",
        "adapter_path": "a",
        "losses": [2.5, 2, 1.25],
        "seconds": 90,
    },
    "evaluate": {"passed": True, "metrics": {"offline_validation_loss": 0.61}, "note": "extra"},
    "experiment": {"ab_test_id": "ab-1", "candidate": "m@2", "created": True},
    "decide": {"ab_test_id": "ab-1", "recommendation": "promote", "reasons": ["lift 12%"]},
    "rollout": {"deployment_id": "d-1", "strategy": "gradual", "status": "done", "traffic": 1},
}


def run_row(status: str, **fields: object) -> RunRow:
    values: dict[str, object] = {
        "id": "ft-pipeline-20261205-001",
        "status": status,
        "trigger": "manual",
        "config": {"training": {"base_model": "tiny"}},
        "error": None,
        "lease_owner": None,
        "heartbeat_at": None,
        "abort_reason": None,
        "memory_initial_mb": None,
        "memory_peak_mb": None,
        "memory_final_mb": None,
        "created_at": STARTED - timedelta(seconds=1),
        "started_at": None,
        "finished_at": None,
    }
    return RunRow(**(values | fields))  # type: ignore[arg-type]


def step(name: str, status: str, *, output: bool = False) -> StepRow:
    return StepRow(
        name,
        status,
        1 if status != "pending" else 0,
        OUTPUTS.get(name) if output else None,
        "boom" if status == "failed" else None,
        STARTED if status != "pending" else None,
        NOW - timedelta(minutes=1) if status in ("succeeded", "failed") else None,
    )


def snapshots() -> list[RunSnapshot]:
    promoted = RunSnapshot(
        run_row(
            "promoted",
            started_at=STARTED,
            finished_at=NOW,
            memory_initial_mb=512.0,
            memory_peak_mb=2048.5,
            memory_final_mb=600.25,
        ),
        [step(name, "succeeded", output=True) for name in STEPS],
        JobRow("j", "tiny", "succeeded"),
        ModelRow("m", "2", "j", "tiny", "champion"),
    )
    pending = RunSnapshot(run_row("pending"), [step(name, "pending") for name in STEPS], None, None)
    failed = RunSnapshot(
        run_row("failed", started_at=STARTED, finished_at=NOW, error="training failed: boom"),
        [step("collect", "succeeded", output=True), step("train", "failed")]
        + [step(name, "pending") for name in STEPS[2:]],
        JobRow("j", "tiny", "failed"),
        None,
    )
    return [promoted, pending, failed]


@pytest.mark.parametrize("snapshot", snapshots(), ids=["promoted", "pending", "failed"])
def test_the_views_of_runs_encode_as_status_out(snapshot: RunSnapshot) -> None:
    view = status_view(snapshot, live=None, now=NOW)
    assert status_json(view) == StatusOut.of(view).model_dump_json().encode()


def test_values_pydantic_would_coerce_encode_the_same() -> None:
    """Whole numbers in float fields, live training progress, a timestamp on a second."""
    view = StatusView(
        pipeline_id="ft-pipeline-20261205-002",
        status="training",
        run_status="running",
        finished=False,
        progress={
            "data_collection": "completed",
            "model_training": "in_progress",
            "evaluation": "pending",
            "deployment": "pending",
        },
        current_stage="model_training",
        current_step="train",
        estimated_completion=NOW.replace(microsecond=0),
        metrics=StatusMetrics(6, 2, None),
        message=None,
        error=None,
        losses=[3, 2.5],
        training_progress=TrainingProgress(12, 40),
        steps=[StepView("train", "model_training", "running", 1, STARTED, None, None)],
        model_version=ModelVersionView(None, None, "j", "tiny", "running"),
        training_data=TrainingDataView(3, 4, 7),
        memory_usage=MemoryView(512, None, None),
        execution_time_seconds=0,
        created_at=STARTED,
        started_at=STARTED,
        finished_at=None,
        trigger="schedule",
        evidence={"collect": OUTPUTS["collect"]},
    )
    assert status_json(view) == StatusOut.of(view).model_dump_json().encode()
