"""How a run's steps read as the documented progress once the run goes past evaluation."""

from __future__ import annotations

from tuneloop.app.progress import StepState, current_step_of, display_status, progress_of
from tuneloop.domain.runs import STEPS


def states(**statuses: str) -> list[StepState]:
    return [StepState(name, statuses.get(name, "pending")) for name in STEPS]


DONE = dict.fromkeys(("collect", "train", "register", "evaluate"), "succeeded")


def test_a_run_waiting_for_its_test_is_evaluating_and_says_so() -> None:
    steps = states(**DONE, experiment="succeeded", decide="waiting")
    progress = progress_of(steps, run_status="waiting")
    assert progress["evaluation"] == "in_progress" and progress["deployment"] == "pending"
    assert current_step_of(steps, run_status="waiting") == "decide"
    assert display_status(steps, run_status="waiting") == "waiting"


def test_a_rollout_being_checked_reads_rolling_out() -> None:
    steps = states(**DONE, experiment="succeeded", decide="succeeded", rollout="running")
    assert display_status(steps, run_status="running") == "rolling_out"
    assert progress_of(steps, run_status="running")["deployment"] == "in_progress"


def test_a_promoted_run_is_deployed_however_it_got_there() -> None:
    rolled = states(**dict.fromkeys(STEPS, "succeeded"))
    assert progress_of(rolled, run_status="promoted")["deployment"] == "completed"
    bootstrap = states(**DONE, experiment="succeeded", decide="skipped", rollout="skipped")
    assert progress_of(bootstrap, run_status="promoted")["deployment"] == "completed"


def test_stages_an_ended_run_never_reached_are_skipped_not_pending() -> None:
    aborted = states(collect="succeeded", train="failed")
    progress = progress_of(aborted, run_status="aborted")
    assert progress["model_training"] == "failed"
    assert progress["evaluation"] == "skipped" and progress["deployment"] == "skipped"
    going = states(collect="succeeded", train="running")
    assert progress_of(going, run_status="running")["deployment"] == "pending"


def test_a_rolled_back_run_failed_its_deployment() -> None:
    rolled = states(**dict.fromkeys(STEPS, "succeeded"))
    assert progress_of(rolled, run_status="rolled_back")["deployment"] == "failed"
