"""``tuneloop serve``: the HTTP API under uvicorn (settings from the environment and files).

With more than one worker each is a process of its own, so Prometheus metrics go through
prometheus-client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` names an empty directory
before any worker starts (prometheus-client picks its storage when it is first imported,
and workers inherit the environment), and ``/metrics`` merges what every worker wrote there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Annotated, Any

import typer

from tuneloop.cli.common import settings

APP = "tuneloop.api.app:app_from_env"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's name, read at its import
# uvicorn kills a worker that does not answer its supervisor's ping within this time, and
# a worker answers only once it has imported the CLI (multiprocessing's spawn re-imports
# ``__main__``): seconds on a busy 2-core machine. uvicorn's default of 5 s killed and
# restarted such workers forever; a hung worker is now replaced after a minute.
WORKER_HEALTHCHECK_SECONDS = 60


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: api.host).")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (default: api.port).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: api.workers).")
    ] = None,
    loop_worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker",
            help="Run the loop's worker in this process (default: worker.enabled_in_serve).",
        ),
    ] = None,
) -> None:
    """Serve the REST API and the dashboard (/ui): migrations run at start; /docs has the
    OpenAPI documentation.

    The loop's worker (schedule, triggers, waiting runs, rollout ticks) runs in this
    process too, unless ``--no-worker``; a production deployment runs ``tuneloop worker``
    separately. Either way only one worker leads at a time.
    """
    from tuneloop.observability.logging import configure_logging

    config = settings()
    configure_logging(config)
    processes = workers or config.api.workers
    options = uvicorn_options(
        host=host or config.api.host,
        port=port or config.api.port,
        workers=processes,
        log_level=config.log_level.lower(),
    )
    in_process = config.worker.enabled_in_serve if loop_worker is None else loop_worker
    typer.echo(f"tuneloop: dashboard at {dashboard_url(options['host'], options['port'])}")
    with shared_metrics_dir(config.workspace, workers=processes), worker_thread(config, in_process):
        run_uvicorn(APP, options)


def dashboard_url(host: str, port: int) -> str:
    """Where a browser on this machine finds the dashboard (any-interface binds: localhost)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/ui"


@contextmanager
def worker_thread(config: Any, enabled: bool) -> Iterator[None]:
    """The loop's worker in a thread of the serving process while the server runs."""
    if not enabled:
        yield
        return
    from tuneloop.worker.process import WorkerThread, build_worker

    running = WorkerThread(build_worker(config)).start()
    try:
        yield
    finally:
        running.stop()


def uvicorn_options(*, host: str, port: int, workers: int, log_level: str) -> dict[str, Any]:
    """How ``tuneloop serve`` runs uvicorn (``bench/bare_serve.py`` runs its reference so too)."""
    return {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "log_config": None,  # our JSON logging, configured before and in each worker
        "access_log": False,  # the request log line replaces uvicorn's
        "log_level": log_level,
        "server_header": False,
        "timeout_worker_healthcheck": WORKER_HEALTHCHECK_SECONDS,
    }


def run_uvicorn(app: str, options: dict[str, Any]) -> None:
    """One worker in this process, or uvicorn's supervisor over ``options["workers"]``."""
    import uvicorn

    if options["workers"] == 1:
        uvicorn.run(app, **options)
    else:
        run_workers(uvicorn.Config(app, **options))


def run_workers(server_config: Any) -> None:
    """uvicorn's multi-worker supervisor, on a listening socket that asyncio recognizes as
    TCP. uvicorn binds it as ``socket.socket(family)`` (protocol 0), and asyncio sets
    TCP_NODELAY on accepted connections only when the protocol reads IPPROTO_TCP, so every
    answer waited for Nagle's algorithm: about 40 ms per request with two workers on
    loopback (uvicorn issue #3149). Re-opening the descriptor reads the real protocol."""
    import socket

    from uvicorn.supervisors import Multiprocess

    bound = server_config.bind_socket()
    if bound.family in (socket.AF_INET, socket.AF_INET6):
        bound = socket.socket(fileno=bound.detach())
        bound.set_inheritable(True)
    with suppress(KeyboardInterrupt):
        Multiprocess(server_config, sockets=[bound]).run()


@contextmanager
def shared_metrics_dir(workspace: Path, *, workers: int) -> Iterator[Path | None]:
    """For several workers: an empty directory for their metrics, in ``PROMETHEUS_MULTIPROC_DIR``
    while the server runs. One worker: nothing changes (None).

    A directory the operator named in ``PROMETHEUS_MULTIPROC_DIR`` is used, emptied of the
    previous run's files; otherwise a fresh one is made under the workspace and removed at
    exit. Files left by an earlier server would otherwise add its counts to this one's.
    """
    if workers <= 1:
        yield None
        return
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        yield path
        return
    workspace.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="prometheus-multiproc-", dir=workspace.resolve()))
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)
