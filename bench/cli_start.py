"""CLI cold start: ``tuneloop --help``, ``tuneloop runs --help`` and ``tuneloop serve`` to
``/health/ready``, each against a reference measured in the same run.

  * ``--help`` commands: wall time of a fresh process (``python -m tuneloop.cli.main``, the
    same code the ``tuneloop`` script runs), best and median of --rounds, beside
    ``python -c pass`` (the interpreter alone). Goal: ``tuneloop --help`` under 1 s.
  * serve: from ``Popen`` to the first 200 of ``GET /health/ready`` (polled every 10 ms),
    one worker, a fresh SQLite workspace migrated beforehand; the reference is the bare
    FastAPI app of bench/bare_serve.py under the same uvicorn settings.

Also prints which heavy libraries importing the CLI loads (it should load none of them).

    python bench/cli_start.py                 # 7 rounds
    python bench/cli_start.py --rounds 1      # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from http_load import HOST, free_port, probe
from http_servers import bare_command, workspace, write_bare_spec

HEAVY = (
    "scipy",
    "numpy",
    "sqlalchemy",
    "pydantic_settings",
    "torch",
    "transformers",
    "mlflow",
    "fastapi",
    "alembic",
    "psycopg",
)
CLI = [sys.executable, "-m", "tuneloop.cli.main"]


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wall(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run: CPU time shows the work on a busy shared machine."""
    cpu = cpu_of_children()
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, cpu_of_children() - cpu


def timings(argv: list[str], env: dict[str, str], rounds: int) -> tuple[float, float, float]:
    """(best, median) wall seconds and the best CPU seconds; one unmeasured run first warms
    the file cache."""
    wall(argv, env)
    samples = [wall(argv, env) for _ in range(rounds)]
    walls = [w for w, _ in samples]
    return min(walls), statistics.median(walls), min(c for _, c in samples)


def loaded_modules(env: dict[str, str]) -> list[str]:
    code = (
        "import sys, json, tuneloop.cli.main; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return list(json.loads(out.stdout))


def time_to_ready(argv: list[str], env: dict[str, str], log: Path) -> float:
    """Seconds from start to the first 200 of /health/ready; the server is stopped after."""
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in argv]
    with log.open("ab") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv, env=env, cwd=log.parent, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        while time.perf_counter() - started < 60:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                if probe(port, "GET", "/health/ready", headers={})[0] == 200:
                    return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError("server not ready within 60 s")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve_timings(rounds: int) -> tuple[list[float], list[float]]:
    with workspace(None, "cli_start") as space:
        env = space.server_env()
        env |= write_bare_spec(space.folder / "bare.json", [])
        log = space.folder / "server.log"
        ours = [*CLI, "serve", "--host", HOST, "--port", "{port}", "--workers", "1", "--no-worker"]
        tuneloop = [time_to_ready(ours, env, log) for _ in range(rounds)]
        bare = [time_to_ready(bare_command(1), env, log) for _ in range(rounds)]
    return tuneloop, bare


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-serve", action="store_true", help="Skip the serve measurement.")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNELOOP_")}
    base_best, base_median, base_cpu = timings([sys.executable, "-c", "pass"], env, args.rounds)
    print(f"cold start, {args.rounds} rounds: best and median wall seconds, best CPU seconds")
    print(f"{'python -c pass':<28}{base_best:>8.3f}{base_median:>8.3f}{base_cpu:>8.3f}")
    for label, argv in (
        ("tuneloop --help", [*CLI, "--help"]),
        ("tuneloop runs --help", [*CLI, "runs", "--help"]),
    ):
        best, median, cpu = timings(argv, env, args.rounds)
        print(
            f"{label:<28}{best:>8.3f}{median:>8.3f}{cpu:>8.3f}   ratio vs python -c pass: "
            f"{best / base_best:.1f}x; goal < 1 s: {'met' if median < 1 else 'not met'}"
        )
    print(f"heavy modules loaded by importing tuneloop.cli.main: {loaded_modules(env) or 'none'}")
    if args.no_serve:
        return
    ours, bare = serve_timings(args.rounds)
    print(f"serve to /health/ready, 1 worker, SQLite, best / median of {args.rounds} rounds")
    print(f"{'tuneloop serve':<28}{min(ours):>8.3f}{statistics.median(ours):>8.3f}")
    print(f"{'bare FastAPI (uvicorn)':<28}{min(bare):>8.3f}{statistics.median(bare):>8.3f}")
    print(f"ratio tuneloop / bare (best): {min(ours) / min(bare):.1f}x")


if __name__ == "__main__":
    main()
