"""``tuneloop serve`` left alone on a scaled clock: two full cycles, started by data triggers.

A real ``tuneloop serve`` process (real HTTP, its in-process worker on, the hosted
``openai`` backend against the fake fine-tuning API, ``worker.clock_speed`` 3600: a wall
second is an hour). The test only plays a client, over HTTP:

1. it posts the tenant's posts; the data trigger's run trains and, the tenant having no
   champion, promotes version 1 (bootstrap);
2. it posts newer posts; the second run trains version 2, creates an A/B test against the
   champion, and the client sends the traffic a real one would: each unit is routed by
   ``/v1/route`` (which records its exposure) and its outcome goes to ``/v1/events``
   without ``ts`` (stamped with the server's scaled clock). Version 2 earns twice the
   engagement, so the test, read at its planned end, says promote; the gradual rollout
   then holds each step until the client's generations and outcomes clear its guardrails,
   and the MLflow ``champion`` alias flips to version 2.

The experiment and rollout are made small by settings only: a 12 h test at a 50 % split,
rollout steps of 50 % held 1 h. The offline gate keeps its default (a real improvement):
the second job trains on more posts, and the fake API reports a lower validation loss for it.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tuneloop.domain.clock import SystemClock
from tuneloop.posts.schema import PostIn
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.synthetic.posts import SyntheticSpec, generate_posts
from tuneloop.train.hosted.fake import API_KEY, FakeFineTuning, serve
from tuneloop.wiring import Container

pytest.importorskip("mlflow", reason="the train extra (mlflow) is not installed")
pytestmark = pytest.mark.slow

TENANT = "acme"
MODEL = f"tuneloop-{TENANT}"
TEST_HOURS = 12  # the A/B test's planned duration: 12 wall seconds at 3600x
ENGAGEMENT = {"1": 0.05, "2": 0.10}  # what each version's posts earn: version 2 wins


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fake_api() -> Iterator[str]:
    fake = FakeFineTuning(
        SystemClock(), process_s=0.1, validate_s=0.1, queue_s=0.1, step_s=0.1, steps_per_epoch=4
    )
    with serve(fake) as base_url:
        yield base_url


def serve_env(container: Container, base_url: str) -> dict[str, str]:
    settings = container.settings
    return dict(os.environ) | {
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "TUNELOOP_WORKSPACE": str(settings.workspace),
        "TUNELOOP_DATABASE__URL": settings.database.url,
        "TUNELOOP_API__JWT_SECRET": "a-serve-test-secret-of-at-least-32-chars",
        "TUNELOOP_WORKER__CLOCK_SPEED": "3600",
        "TUNELOOP_WORKER__TICK_SECONDS": "0.2",
        "TUNELOOP_TRIGGERS__MIN_NEW_EXAMPLES": "30",
        # Leap days only: the weekly default would start a run when the scaled clock
        # crosses Sunday 02:00 (a few scaled days pass in the test), before the data trigger.
        "TUNELOOP_PIPELINE__WEEKLY_SCHEDULE": "0 2 29 2 *",
        "TUNELOOP_PIPELINE__TRAINING_DATA_THRESHOLD": "30",
        "TUNELOOP_TRIGGERS__DRIFT_DROP": "0.99",
        "TUNELOOP_TRIGGERS__MAX_MODEL_AGE_DAYS": "10000",
        "TUNELOOP_TRIGGERS__COOLDOWN_HOURS": "0",
        "TUNELOOP_TRAINING__BACKEND": "openai",
        "TUNELOOP_TRAINING__EPOCHS": "2",
        "TUNELOOP_TRAINING__OPENAI__POLL_INITIAL_SECONDS": "0.05",
        "TUNELOOP_TRAINING__OPENAI__POLL_MAX_SECONDS": "0.2",
        "TUNELOOP_OPENAI__BASE_URL": base_url,
        "TUNELOOP_OPENAI__API_KEY": API_KEY,
        "TUNELOOP_API__RATE_LIMIT_PER_MINUTE": "0",
        "TUNELOOP_PIPELINE__A_B_TEST_DURATION_HOURS": str(TEST_HOURS),
        "TUNELOOP_PIPELINE__A_B_TEST_TRAFFIC_SPLIT": "0.5",
        "TUNELOOP_ROLLOUT__INITIAL_TRAFFIC": "0.5",
        "TUNELOOP_ROLLOUT__INCREMENT_PERCENTAGE": "0.5",
        "TUNELOOP_ROLLOUT__INCREMENT_INTERVAL_HOURS": "1",
    }


def tail(log: Path) -> str:
    """The end of the server's log (a file: a pipe nobody reads fills up and blocks it)."""
    return log.read_text(errors="replace")[-3000:]


def wait(what: str, probe: Any, seconds: float, process: subprocess.Popen[str], log: Path) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tuneloop serve exited while waiting for {what}:\n{tail(log)}")
        try:
            found = probe()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"not in {seconds}s: {what}")


class Client:
    """The tenant's client: posts, routing, events and run status, over HTTP only."""

    def __init__(self, url: str, key: str, process: subprocess.Popen[str], log: Path) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        self.process, self.log = process, log
        self.rng = random.Random(17)
        self.units = 0

    def post_posts(self, rows: list[dict[str, Any]]) -> None:
        body = [PostIn.model_construct(**row).model_dump(mode="json") for row in rows]
        answer = self.http.post("/posts", json={"posts": body})
        assert answer.status_code < 300, answer.text

    def run_after(self, seen: set[str]) -> str:
        def new_run() -> str | None:
            items = self.http.get("/fine-tuning/runs").json()["items"]
            fresh = [item["pipeline_id"] for item in items if item["pipeline_id"] not in seen]
            return fresh[0] if fresh else None

        found: str = wait("a run started by the worker", new_run, 60, self.process, self.log)
        return found

    def status(self, pipeline_id: str) -> dict[str, Any]:
        view: dict[str, Any] = self.http.get(f"/fine-tuning/status/{pipeline_id}").json()
        return view

    def serve_units(self, count: int) -> list[dict[str, Any]]:
        """Route ``count`` new units (each call records its exposure server-side)."""
        routed = []
        for _ in range(count):
            self.units += 1
            unit = f"persona-{self.units}"
            answer = self.http.post("/v1/route", json={"unit_id": unit})
            assert answer.status_code == 200, answer.text
            routed.append(answer.json() | {"unit_id": unit})
        return routed

    def report(self, routed: list[dict[str, Any]], *, generations: bool) -> None:
        """Each unit's generation (optional) and outcome, without ``ts``: the server stamps."""
        events = []
        for unit in routed:
            common = {"unit_id": unit["unit_id"], "model_id": unit["model"]}
            if unit["experiment_key"] is not None and unit["source"] == "experiment":
                common |= {"experiment_key": unit["experiment_key"], "arm": unit["arm"]}
            key = f"{unit['unit_id']}-{unit['model']}"
            if generations:
                events.append(
                    common
                    | {"idempotency_key": f"gen-{key}", "kind": "generation", "tokens": 60}
                    | {"latency_ms": self.rng.uniform(80, 160)}
                )
            mean = ENGAGEMENT[unit["version"]]
            engagement = max(0.0, self.rng.gauss(mean, mean / 4))
            events.append(
                common
                | {"idempotency_key": f"out-{key}", "kind": "outcome", "engagement": engagement}
            )
        for start in range(0, len(events), 100):
            answer = self.http.post("/v1/events", json={"events": events[start : start + 100]})
            assert answer.status_code == 202 and answer.json()["rejected"] == 0, answer.text


def newer_posts(after: datetime) -> list[dict[str, Any]]:
    """Posts published since ``after`` (the client's wall clock, behind the server's scaled
    one: inside the collection window, newer than the first collection's watermark)."""
    rows = list(generate_posts(SyntheticSpec(posts=400, seed=6, weeks=1, id_prefix="new")))
    span = (datetime.now(UTC) - after) / (len(rows) + 1)
    return [row | {"ts": after + span * (index + 1)} for index, row in enumerate(rows)]


def served_by(url: str, key: str, units: int) -> set[str]:
    """The models that answered a few proxied completions (the official ``openai`` client
    against ``/v1``; the champion's ``ft:`` model is served by the fake API)."""
    from openai import OpenAI

    sdk = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
    models = set()
    for index in range(units):
        raw = sdk.chat.completions.with_raw_response.create(
            model="auto",
            user=f"reader-{index}",
            messages=[{"role": "user", "content": "Create engaging content"}],
        )
        assert raw.parse().choices[0].message.content
        models.add(raw.headers["x-tuneloop-model"])
    sdk.close()
    return models


def served_after_rollout(url: str, key: str) -> set[str]:
    """What clients are served once the run is promoted. A process routes from a table it
    keeps for ``serving.route_cache_seconds`` (1 s): a proxied call right after the rollout
    finished may still be routed by its last step. Asked again until version 2 alone
    answers, for a few cache lifetimes; the last answer is returned (and asserted)."""
    deadline = time.monotonic() + 5
    seen = served_by(url, key, 3)
    while seen != {f"{MODEL}@2"} and time.monotonic() < deadline:
        time.sleep(0.5)
        seen = served_by(url, key, 3)
    return seen


def drive_second_cycle(client: Client, pipeline_id: str) -> dict[str, Any]:
    """Play the client until the run ends: traffic for its A/B test, then for each rollout
    step; returns the run's final status."""
    tested = False
    while True:
        view = client.status(pipeline_id)
        if view["finished"]:
            return view
        if client.process.poll() is not None:
            pytest.fail(f"tuneloop serve exited:\n{tail(client.log)}")
        evidence = view["evidence"]
        if "rollout" in evidence:
            client.report(client.serve_units(250), generations=True)
        elif evidence.get("experiment", {}).get("ab_test_id") and not tested:
            client.report(client.serve_units(300), generations=False)
            tested = True
        time.sleep(0.3)


def test_serve_left_alone_runs_two_cycles_bootstrap_then_ab_test_and_rollout(
    container: Container, engine: Engine, fake_api: str, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    key = create_api_key(engine, TENANT, role=Role.ADMIN, name="client").plaintext
    port = free_port()
    command = [sys.executable, "-m", "tuneloop.cli.main", "serve", "--port", str(port)]
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            command, env=serve_env(container, fake_api), stdout=sink, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    client = Client(url, key, process, log)
    try:
        ready = lambda: httpx.get(f"{url}/health/ready").status_code == 200  # noqa: E731
        wait("ready", ready, 90, process, log)
        # Cycle 1: a week of posts, a few dozen above the engagement threshold.
        first_posted = datetime.now(UTC)
        spec = SyntheticSpec(posts=400, seed=5, weeks=1)
        client.post_posts(list(generate_posts(spec, now=first_posted)))
        first = client.run_after(set())

        def finished(pipeline_id: str) -> Any:
            return lambda: (view := client.status(pipeline_id))["finished"] and view

        bootstrap = wait("the first run finishes", finished(first), 120, process, log)
        assert bootstrap["run_status"] == "promoted", (bootstrap["message"], bootstrap["error"])
        # Cycle 2: newer posts; the worker does the rest while the client sends traffic.
        client.post_posts(newer_posts(first_posted))
        second = client.run_after({first})
        view = drive_second_cycle(client, second)
        after = served_after_rollout(url, key) if view["run_status"] == "promoted" else set()
    finally:
        client.http.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert bootstrap["trigger"] == "data" and bootstrap["model_version"]["version"] == "1"
    assert view["run_status"] == "promoted", (view["message"], view["error"], tail(log))
    assert view["trigger"] == "data" and view["model_version"]["version"] == "2"
    decided = view["evidence"]["decide"]
    assert decided["recommendation"] == "promote", decided
    assert decided["srm_ok"] and decided["lift"] > 0.15, decided
    rollout = view["evidence"]["rollout"]
    assert (rollout["strategy"], rollout["outcome"], rollout["triggers"]) == (
        "gradual_rollout",
        "promoted",
        [],
    )
    steps = [(moment["kind"], moment["traffic"]) for moment in rollout["timeline"]]
    assert steps[0] == ("deployed", 0.5) and steps[-1] == ("completed", 1.0), steps
    mlflow = MlflowClient(tracking_uri=container.settings.mlflow_tracking_uri)
    assert str(mlflow.get_model_version_by_alias(MODEL, "champion").version) == "2"
    assert after == {f"{MODEL}@2"}  # what clients are served now
