"""The HTTP benchmarks' servers: a fresh database, ``tuneloop serve`` and the bare FastAPI
reference as uvicorn processes on loopback, started, awaited and stopped.

The reference is FastAPI under the same uvicorn settings as ``tuneloop serve`` (same event
loop, HTTP parser and worker count, no access log) with no middleware, auth, dependencies
or database: it parses the same body and returns our endpoint's own answer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body, FastAPI

from http_load import HOST, free_port, probe

if TYPE_CHECKING:
    from sqlalchemy import Engine

BENCH = Path(__file__).resolve().parent
BARE_SPEC_ENV = "TUNELOOP_BENCH_BARE_SPEC"
STARTUP_SECONDS = 60


# --- the database and the servers' environment --------------------------------------------


@dataclass(frozen=True)
class Workspace:
    """A fresh, migrated database the bench fills and the servers use."""

    folder: Path  # tuneloop's workspace; server logs go here too
    url: str  # what the servers get as TUNELOOP_DATABASE__URL
    engine: Engine

    def server_env(self) -> dict[str, str]:
        """The environment of ``tuneloop serve``: none of the caller's tuneloop settings (as
        in the tests), this workspace and database, rate limits off (they would throttle)."""
        from tuneloop.config import STANDARD_NAMES

        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("TUNELOOP_") and name not in STANDARD_NAMES
        }
        return env | {
            "TUNELOOP_WORKSPACE": str(self.folder),
            "TUNELOOP_DATABASE__URL": self.url,
            "TUNELOOP_API__RATE_LIMIT_PER_MINUTE": "0",
        }


@contextmanager
def workspace(database_url: str | None, name: str) -> Iterator[Workspace]:
    """SQLite in a temporary workspace, or (``database_url``) a private PostgreSQL schema
    ``bench_<name>_<random>``, created and migrated here, dropped afterwards."""
    from sqlalchemy import create_engine, text

    from tuneloop.store.db import make_engine, normalize_url
    from tuneloop.store.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix=f"tuneloop-bench-{name}-") as temporary:
        folder = Path(temporary) / "workspace"
        folder.mkdir()
        schema = f"bench_{name}_{uuid.uuid4().hex[:8]}"
        if database_url is None:
            url = f"sqlite:///{folder / 'tuneloop.db'}"
        else:
            base = normalize_url(database_url)
            admin = create_engine(base)
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            separator = "&" if "?" in base else "?"
            url = f"{base}{separator}options=-csearch_path%3D{schema}"
        engine = make_engine(url)
        try:
            upgrade(engine)  # here, once: the workers' own startup migration finds nothing to do
            yield Workspace(folder, url, engine)
        finally:
            engine.dispose()
            if database_url is not None:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()


# --- servers -------------------------------------------------------------------------------


@contextmanager
def serve(
    command: list[str], *, env: dict[str, str], log: Path, started: str, workers: int
) -> Iterator[int]:
    """Start ``command`` (it gets ``{port}`` filled in), wait until its log shows ``started``
    once per worker and GET /health/ready answers 200, yield the port, then stop it
    (SIGTERM; SIGKILL to its process group if it hangs)."""
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in command]
    with log.open("ab") as sink:
        # Its own session: the uvicorn supervisor and its workers form one process group.
        # Its working directory is the log's: no stray tuneloop.toml is read.
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=log.parent,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(process, port, log, started=started, workers=workers)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_ready(
    process: subprocess.Popen[bytes], port: int, log: Path, *, started: str, workers: int
) -> None:
    """Every worker started (a worker still importing would skew the first window)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{text[-3000:]}")
        if "died" in text and "Child process" in text:
            # uvicorn's supervisor kills a worker that has not answered its health check
            # within timeout_worker_healthcheck (5 s): on a busy machine, forever.
            raise RuntimeError(f"uvicorn restarts a worker (busy machine?):\n{text[-3000:]}")
        if text.count(started) >= workers:
            try:
                status, _ = probe(port, "GET", "/health/ready", headers={})
                if status == 200:
                    return
            except OSError:
                pass
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"server not ready within {STARTUP_SECONDS} s:\n{tail}")


def tuneloop_server(workers: int, *, env: dict[str, str], log: Path) -> AbstractContextManager[int]:
    """``tuneloop serve`` with ``workers`` workers (a context manager yielding its port)."""
    return serve(
        tuneloop_command(workers), env=env, log=log, started="tuneloop API started", workers=workers
    )


def bare_server(workers: int, *, env: dict[str, str], log: Path) -> AbstractContextManager[int]:
    """The bare FastAPI reference with ``workers`` workers (yields its port)."""
    started = "Application startup complete"
    return serve(bare_command(workers), env=env, log=log, started=started, workers=workers)


def tuneloop_command(workers: int) -> list[str]:
    """``tuneloop serve``, exactly as deployed (its settings come from the environment)."""
    return [
        sys.executable,
        "-m",
        "tuneloop.cli.main",
        "serve",
        "--host",
        HOST,
        "--port",
        "{port}",
        "--workers",
        str(workers),
    ]


def bare_command(workers: int) -> list[str]:
    """The reference under the same uvicorn setup as ``tuneloop serve`` (bare_serve.py)."""
    return [sys.executable, str(BENCH / "bare_serve.py"), HOST, "{port}", str(workers)]


@dataclass(frozen=True)
class BareRoute:
    """One route of the reference: ``{item}`` in the path is a path parameter; ``answer`` is
    the JSON it returns (our endpoint's own answer, so both send the same bytes)."""

    method: str
    path: str
    answer: Any


def write_bare_spec(path: Path, routes: Sequence[BareRoute]) -> dict[str, str]:
    """Write the reference's routes; returns the environment entry that points to them."""
    spec = [{"method": r.method, "path": r.path, "answer": r.answer} for r in routes]
    path.write_text(json.dumps(spec), encoding="utf-8")
    return {BARE_SPEC_ENV: str(path)}


def bare_app() -> FastAPI:
    """Uvicorn's factory for the reference: FastAPI with no middleware, no auth, no
    dependencies; a POST parses its JSON body, a GET takes its path parameter (if it has one),
    both return a fixed JSON. Handlers are ``async def`` (no thread hop): the least FastAPI
    can do."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    spec = json.loads(Path(os.environ[BARE_SPEC_ENV]).read_text(encoding="utf-8"))

    def post(answer: Any) -> Callable[..., Any]:
        async def endpoint(body: Annotated[dict[str, Any], Body()]) -> Any:
            return answer

        return endpoint

    def get(answer: Any, path: str) -> Callable[..., Any]:
        async def endpoint(item: str) -> Any:
            return answer

        async def listing() -> Any:
            return answer

        return endpoint if "{item}" in path else listing

    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    app.add_api_route("/health/ready", ready, methods=["GET"])
    for route in spec:
        if route["method"] == "POST":
            endpoint = post(route["answer"])
        else:
            endpoint = get(route["answer"], route["path"])
        app.add_api_route(route["path"], endpoint, methods=[route["method"]])
    return app
