"""``tuneloop serve``: the HTTP API under uvicorn (settings from the environment and files)."""

from __future__ import annotations

from typing import Annotated

import typer

from tuneloop.cli.common import settings


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: api.host).")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (default: api.port).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: api.workers).")
    ] = None,
) -> None:
    """Serve the REST API: migrations run at start; /docs has the OpenAPI documentation."""
    import uvicorn  # local: the rest of the CLI starts without the web stack

    from tuneloop.observability.logging import configure_logging

    config = settings()
    configure_logging(config)
    uvicorn.run(
        "tuneloop.api.app:app_from_env",
        factory=True,
        host=host or config.api.host,
        port=port or config.api.port,
        workers=workers or config.api.workers,
        log_config=None,  # our JSON logging, configured above and in each worker
        access_log=False,  # the request log line replaces uvicorn's
        log_level=config.log_level.lower(),
        server_header=False,
    )
