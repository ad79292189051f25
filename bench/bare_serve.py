"""Start the bare FastAPI reference the way ``tuneloop serve`` starts tuneloop: ``uvicorn.run``
for one worker, ``tuneloop.cli.serve.run_workers`` (uvicorn's supervisor on a socket with
TCP_NODELAY, see there) for more, so both servers differ only in the app.

Usage: ``python bench/bare_serve.py HOST PORT WORKERS``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

from tuneloop.cli.serve import run_workers

sys.path.insert(0, str(Path(__file__).resolve().parent))  # http_servers, for the workers too


def main() -> None:
    host, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    options = {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "access_log": False,
        "server_header": False,
        "log_level": "info",  # its startup line tells when each worker is up
        "timeout_worker_healthcheck": 60,
    }
    if workers == 1:
        uvicorn.run("http_servers:bare_app", **options)  # type: ignore[arg-type]
    else:
        run_workers(uvicorn.Config("http_servers:bare_app", **options))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
