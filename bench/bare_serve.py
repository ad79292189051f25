"""Start the bare FastAPI reference the way ``tuneloop serve`` starts tuneloop: the same
uvicorn options and runner (``tuneloop.cli.serve.uvicorn_options`` and ``run_uvicorn``:
uvicorn's supervisor on a socket with TCP_NODELAY for more than one worker, see there), so
both servers differ only in the app. Only the logging differs: uvicorn's own, whose startup
line tells when each worker is up.

Usage: ``python bench/bare_serve.py HOST PORT WORKERS``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tuneloop.cli.serve import run_uvicorn, uvicorn_options

sys.path.insert(0, str(Path(__file__).resolve().parent))  # http_servers, for the workers too


def main() -> None:
    host, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    options = uvicorn_options(host=host, port=port, workers=workers, log_level="info")
    del options["log_config"]  # uvicorn's default logging: no tuneloop JSON set up here
    run_uvicorn("http_servers:bare_app", options)


if __name__ == "__main__":
    main()
