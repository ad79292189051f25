"""The API's registry of background runs (``app.background.RunWorkers``) on ``app.state``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from tuneloop.app.background import RunWorkers


@asynccontextmanager
async def run_workers_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Keep a registry on ``app.state.run_workers``; stop its runs when the app stops.

    The app's own lifespan wraps this one, so the engine is still open while runs stop.
    """
    outer = getattr(app.state, "run_workers", None)  # a test harness may start it twice
    workers = RunWorkers()
    app.state.run_workers = workers
    try:
        yield
    finally:
        app.state.run_workers = outer
        await run_in_threadpool(workers.shutdown)


async def workers_of(request: Request) -> RunWorkers:
    """FastAPI dependency: the started app's background runs."""
    workers: RunWorkers | None = getattr(request.app.state, "run_workers", None)
    if workers is None:
        raise RuntimeError("the app has not started: use it inside its lifespan")
    return workers


WorkersDep = Annotated[RunWorkers, Depends(workers_of)]
