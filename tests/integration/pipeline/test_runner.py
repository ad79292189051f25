"""The run state machine on SQLite and PostgreSQL, exercised with small in-test steps.

The real steps (collect, train, register, evaluate) are covered by the end-to-end tests;
here the runner's own promises are checked: resume from the last committed step, one
active run per tenant, early final states, abort with cleanup, interruption without it,
memory recorded.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.domain.runs import STEPS, RunStatus, is_retryable
from tuneloop.errors import ConflictError, ExternalServiceError, InvalidStateError
from tuneloop.pipeline.context import RunContext, StepOutcome
from tuneloop.pipeline.runner import StepFunction, execute
from tuneloop.pipeline.service import abort_run, context_for, resumable_run, start_run
from tuneloop.resilience.breaker import CircuitOpenError
from tuneloop.store import runs as repo
from tuneloop.wiring import build_container


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail_once: set[str] = set()

    def step(self, name: str, final: RunStatus | None = None) -> StepFunction:
        def function(ctx: RunContext, outputs: dict[str, dict[str, Any]]) -> StepOutcome:
            self.calls.append(name)
            if name in self.fail_once:
                self.fail_once.discard(name)
                raise RuntimeError(f"{name} broke")
            return StepOutcome({"name": name, "seen": sorted(outputs)}, final=final)

        return function

    def steps(self, **finals: RunStatus) -> dict[str, StepFunction]:
        return {n: self.step(n, finals.get(n)) for n in STEPS}


def run_once(
    engine: Engine, settings: Settings, steps: dict[str, StepFunction], tenant: str = "acme"
) -> RunStatus:
    run = resumable_run(engine, tenant) or start_run(engine, settings, tenant)
    return execute(
        context_for(engine, settings, run, services=build_container(settings, engine=engine)),
        steps,
        poll_seconds=0.05,
    )


def test_a_run_goes_through_every_step_and_records_memory(
    engine: Engine, settings: Settings
) -> None:
    recorder = Recorder()
    assert run_once(engine, settings, recorder.steps()) == RunStatus.SUCCEEDED
    assert recorder.calls == list(STEPS)
    (run,), total = repo.list_runs(engine, "acme")
    assert total == 1 and run.status == "succeeded" and run.lease_owner is None
    assert run.memory_peak_mb is not None and run.memory_peak_mb >= run.memory_initial_mb > 0
    evaluate = repo.steps_of(engine, "acme", run.id)[3]
    assert evaluate.output == {"name": "evaluate", "seen": ["collect", "register", "train"]}


def test_a_failed_run_continues_from_the_failed_step(engine: Engine, settings: Settings) -> None:
    recorder = Recorder()
    recorder.fail_once = {"register"}
    assert run_once(engine, settings, recorder.steps()) == RunStatus.FAILED
    (failed,), _ = repo.list_runs(engine, "acme")
    assert failed.status == "failed" and "register broke" in (failed.error or "")
    # A failed run is not active: `tuneloop run` starts... no: it continues the failed one.
    assert run_once(engine, settings, recorder.steps()) == RunStatus.SUCCEEDED
    assert recorder.calls == ["collect", "train", "register", *STEPS[2:]]


def test_not_enough_data_ends_the_run_and_skips_the_rest(
    engine: Engine, settings: Settings
) -> None:
    recorder = Recorder()
    status = run_once(engine, settings, recorder.steps(collect=RunStatus.NOT_ENOUGH_DATA))
    assert status == RunStatus.NOT_ENOUGH_DATA and recorder.calls == ["collect"]
    (run,), _ = repo.list_runs(engine, "acme")
    assert [s.status for s in repo.steps_of(engine, "acme", run.id)] == [
        "succeeded",
        *["skipped"] * (len(STEPS) - 1),
    ]


def test_one_active_run_per_tenant(engine: Engine, settings: Settings) -> None:
    first = start_run(engine, settings, "acme")
    with pytest.raises(ConflictError, match=first.id):
        start_run(engine, settings, "acme")
    other = start_run(engine, settings, "globex")  # another tenant is free
    assert other.id.startswith("ft-pipeline-")


def test_abort_of_a_run_nobody_executes_cleans_up(engine: Engine, settings: Settings) -> None:
    run = start_run(engine, settings, "acme")
    ctx = context_for(engine, settings, run, services=build_container(settings, engine=engine))
    (ctx.workdir / "checkpoint-1").mkdir(parents=True)
    report = abort_run(
        engine, settings, "acme", run.id, services=build_container(settings, engine=engine)
    )
    assert report.status == "aborted" and report.resources_cleaned == ["temporary_files"]
    assert not ctx.workdir.exists()
    assert repo.get_run(engine, "acme", run.id).status == "aborted"
    with pytest.raises(InvalidStateError):
        abort_run(
            engine, settings, "acme", run.id, services=build_container(settings, engine=engine)
        )


def test_abort_while_running_stops_at_the_next_check(engine: Engine, settings: Settings) -> None:
    started = threading.Event()
    recorder = Recorder()
    run = start_run(engine, settings, "acme")
    ctx = context_for(engine, settings, run, services=build_container(settings, engine=engine))
    worker, result = _execute_in_thread(ctx, recorder.steps() | {"train": _slow_train(started)})
    assert started.wait(10)
    report = abort_run(
        engine,
        settings,
        "acme",
        run.id,
        services=build_container(settings, engine=engine),
        reason="operator said so",
        wait_seconds=10,
    )
    worker.join(10)
    assert result["status"] == RunStatus.ABORTED
    assert report.status == "aborted" and "temporary_files" in report.resources_cleaned
    assert recorder.calls == ["collect"]
    final = repo.get_run(engine, "acme", run.id)
    assert final.cleanup is not None and final.cleanup["reason"] == "operator said so"


def test_an_abort_the_last_step_beats_says_so(engine: Engine, settings: Settings) -> None:
    started = threading.Event()

    def last_step(ctx: RunContext, outputs: dict[str, dict[str, Any]]) -> StepOutcome:
        started.set()
        time.sleep(0.5)  # finishing its work: no safe point left to stop at
        return StepOutcome({})

    run = start_run(engine, settings, "acme")
    ctx = context_for(engine, settings, run, services=build_container(settings, engine=engine))
    worker, result = _execute_in_thread(ctx, Recorder().steps() | {"rollout": last_step})
    assert started.wait(10)
    with pytest.raises(InvalidStateError, match="finished succeeded before the abort"):
        abort_run(
            engine,
            settings,
            "acme",
            run.id,
            services=build_container(settings, engine=engine),
            wait_seconds=10,
        )
    worker.join(10)
    assert result["status"] == RunStatus.SUCCEEDED


def _slow_train(started: threading.Event) -> StepFunction:
    def slow_train(ctx: RunContext, outputs: dict[str, dict[str, Any]]) -> StepOutcome:
        (ctx.workdir / "checkpoint-1").mkdir(parents=True, exist_ok=True)
        started.set()
        for _ in range(400):  # a training loop checking its stop signal
            ctx.check_abort()
            time.sleep(0.025)
        return StepOutcome({})

    return slow_train


def _execute_in_thread(
    ctx: RunContext, steps: dict[str, StepFunction]
) -> tuple[threading.Thread, dict[str, RunStatus]]:
    result: dict[str, RunStatus] = {}
    worker = threading.Thread(
        target=lambda: result.setdefault("status", execute(ctx, steps, poll_seconds=0.05))
    )
    worker.start()
    return worker, result


def test_an_interrupted_run_keeps_its_files_and_is_continued(
    engine: Engine, settings: Settings
) -> None:
    started = threading.Event()
    recorder = Recorder()
    run = start_run(engine, settings, "acme")
    ctx = context_for(engine, settings, run, services=build_container(settings, engine=engine))
    worker, result = _execute_in_thread(ctx, recorder.steps() | {"train": _slow_train(started)})
    assert started.wait(10)
    ctx.interrupt("server_shutdown")
    worker.join(10)

    assert result["status"] == RunStatus.RUNNING  # not finished: to be continued
    stopped = repo.get_run(engine, "acme", run.id)
    assert stopped.status == "running" and stopped.lease_owner is None
    assert not stopped.abort_requested and stopped.cleanup is None
    assert (ctx.workdir / "checkpoint-1").is_dir()
    train = repo.steps_of(engine, "acme", run.id)[1]
    assert train.status == "pending" and train.attempts == 1
    assert train.error == "interrupted: server_shutdown"

    resumed = resumable_run(engine, "acme")
    assert resumed is not None and resumed.id == run.id
    assert run_once(engine, settings, recorder.steps()) == RunStatus.SUCCEEDED
    assert recorder.calls == list(STEPS)
    train = repo.steps_of(engine, "acme", run.id)[1]
    assert train.status == "succeeded" and train.attempts == 2 and train.error is None
    assert repo.list_runs(engine, "acme")[1] == 1


def test_an_abort_that_races_an_interruption_wins(engine: Engine, settings: Settings) -> None:
    started = threading.Event()
    recorder = Recorder()
    run = start_run(engine, settings, "acme")
    ctx = context_for(engine, settings, run, services=build_container(settings, engine=engine))
    # Heartbeats far apart: the stored abort is only seen when the interruption ends the step.
    worker = threading.Thread(
        target=execute,
        args=(ctx, recorder.steps() | {"train": _slow_train(started)}),
        kwargs={"poll_seconds": 30.0},
    )
    worker.start()
    assert started.wait(10)
    repo.request_abort(engine, "acme", run.id, reason="operator said so")
    ctx.interrupt("server_shutdown")
    worker.join(10)
    final = repo.get_run(engine, "acme", run.id)
    assert final.status == "aborted" and final.cleanup is not None
    assert final.cleanup["reason"] == "operator said so"
    assert not ctx.workdir.exists()


def _down_for(calls: int) -> tuple[list[str], StepFunction]:
    """A register step whose MLflow is down (breaker open) for its first ``calls`` tries."""
    tries: list[str] = []

    def register(ctx: RunContext, outputs: dict[str, dict[str, Any]]) -> StepOutcome:
        tries.append("register")
        if len(tries) <= calls:
            raise CircuitOpenError("mlflow", 60.0)
        return StepOutcome({"registered": True})

    return tries, register


def _run_with_fake_sleep(
    engine: Engine, settings: Settings, register: StepFunction
) -> tuple[RunStatus, list[float]]:
    slept: list[float] = []
    steps = Recorder().steps()
    steps["register"] = register
    run = resumable_run(engine, "acme") or start_run(engine, settings, "acme")
    ctx = context_for(engine, settings, run, services=build_container(settings, engine=engine))
    ctx.sleep = slept.append
    return execute(ctx, steps, poll_seconds=0.05), slept


def test_a_step_waits_out_an_mlflow_outage_and_the_run_succeeds(
    engine: Engine, settings: Settings
) -> None:
    tries, register = _down_for(3)
    status, slept = _run_with_fake_sleep(engine, settings, register)
    assert status == RunStatus.SUCCEEDED
    assert len(tries) == 4 and slept == [60.0, 60.0, 60.0]  # until the breaker lets a trial in
    (run,), _ = repo.list_runs(engine, "acme")
    assert run.status == "succeeded" and run.error is None


def test_an_outage_longer_than_the_wait_fails_the_run_as_retryable(
    engine: Engine, settings: Settings
) -> None:
    short = settings.model_copy(
        update={"mlflow": settings.mlflow.model_copy(update={"outage_wait_seconds": 90.0})}
    )
    tries, register = _down_for(100)
    status, slept = _run_with_fake_sleep(engine, short, register)
    assert status == RunStatus.FAILED
    assert sum(slept) == 90.0 and len(tries) == 3
    (run,), _ = repo.list_runs(engine, "acme")
    assert is_retryable(run.error) and "register" in (run.error or "")
    step = next(s for s in repo.steps_of(engine, "acme", run.id) if s.name == "register")
    assert is_retryable(step.error)
    # Any other failure is not retryable.
    assert not is_retryable("register: RuntimeError: register broke")


def test_an_outage_during_a_recheck_keeps_the_run_waiting(
    engine: Engine, settings: Settings
) -> None:
    checks: list[str] = []

    def decide(ctx: RunContext, outputs: dict[str, dict[str, Any]]) -> StepOutcome:
        checks.append("check")
        if len(checks) == 2:
            raise ExternalServiceError("mlflow", "unreachable")
        if len(checks) < 4:
            return StepOutcome({"checked": len(checks)}, wait=True)
        return StepOutcome({"checked": len(checks)})

    steps = Recorder().steps() | {"decide": decide}
    assert run_once(engine, settings, steps) == RunStatus.WAITING
    assert run_once(engine, settings, steps) == RunStatus.WAITING  # the outage
    (run,), _ = repo.list_runs(engine, "acme")
    step = next(s for s in repo.steps_of(engine, "acme", run.id) if s.name == "decide")
    assert (step.status, step.output) == ("waiting", {"checked": 1})  # evidence kept
    assert step.error is not None and "mlflow: unreachable" in step.error
    assert run.status == "waiting" and run.error is None and run.lease_owner is None
    assert run_once(engine, settings, steps) == RunStatus.WAITING
    assert run_once(engine, settings, steps) == RunStatus.SUCCEEDED
    step = next(s for s in repo.steps_of(engine, "acme", run.id) if s.name == "decide")
    assert step.attempts == 1 and step.error is None  # re-checks are one attempt


def test_an_outage_on_a_first_check_fails_the_run(engine: Engine, settings: Settings) -> None:
    """Past its bounded wait for MLflow (none here), a first check fails the run, retryably."""
    no_wait = settings.model_copy(
        update={"mlflow": settings.mlflow.model_copy(update={"outage_wait_seconds": 0.0})}
    )

    def decide(ctx: RunContext, outputs: dict[str, dict[str, Any]]) -> StepOutcome:
        raise ExternalServiceError("mlflow", "unreachable")

    assert run_once(engine, no_wait, Recorder().steps() | {"decide": decide}) == RunStatus.FAILED
    (run,), _ = repo.list_runs(engine, "acme")
    assert is_retryable(run.error) and "decide" in (run.error or "")
