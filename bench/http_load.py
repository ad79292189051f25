"""The HTTP benchmarks' load generator: pre-built requests, a keep-alive closed-loop client,
its results (rate, latency percentiles, errors) and the results table.

The generator is written here rather than taken from a tool: no well-kept HTTP load tool
(oha, wrk, hey, h2load) installs from PyPI without a compiler or a system package, and the
benchmarks must run from the project's own install. It is kept cheap because it shares the
machine's cores with the server: a fixed number of HTTP/1.1 keep-alive connections over raw
asyncio streams, each sending the next pre-built request as soon as the previous answer is
read (closed loop), answers framed by ``Content-Length`` only. Its own CPU time over the
timed window is reported, so a reader can see what it took from the server. The same
generator measures our endpoint and the reference in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"

RequestSource = Callable[[], bytes]


# --- requests ------------------------------------------------------------------------------


def request_head(method: str, path: str, *, headers: dict[str, str], length: int) -> bytes:
    """The head of an HTTP/1.1 keep-alive request whose JSON body has ``length`` bytes."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if length or method in ("POST", "PUT", "PATCH"):
        lines += ["Content-Type: application/json", f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def request_bytes(
    method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """One complete request, ready to write."""
    return request_head(method, path, headers=headers or {}, length=len(body)) + body


def cycle(requests: Sequence[bytes]) -> RequestSource:
    """Hand out pre-built requests in turn, forever."""
    index = -1
    count = len(requests)

    def next_request() -> bytes:
        nonlocal index
        index = (index + 1) % count
        return requests[index]

    return next_request


def probe(
    port: int, method: str, path: str, *, body: bytes = b"", headers: dict[str, str]
) -> tuple[int, Any]:
    """(status, parsed JSON or text) of one request, for checks before the load."""
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        sent = headers | ({"Content-Type": "application/json"} if body else {})
        connection.request(method, path, body=body or None, headers=sent)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw.decode(errors="replace")


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --- the load generator --------------------------------------------------------------------


@dataclass
class Result:
    """One timed window: completed answers, their latencies, statuses and failures."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: int = 0  # connection errors and unparseable answers
    generator_cpu: float = 0.0  # the generator's CPU seconds over the window

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return self.failures + sum(n for status, n in self.statuses.items() if status >= 400)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile_ms(self, share: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class _Window:
    def __init__(self) -> None:
        self.measuring = False
        self.stopped = False
        self.result = Result(seconds=0.0)


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one answer: (status, whether the server keeps the connection open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lowered = head.lower()
    start = lowered.find(b"\r\ncontent-length:")
    if start < 0:
        raise ValueError("answer without Content-Length")
    end = lowered.find(b"\r\n", start + 2)
    await reader.readexactly(int(lowered[start + 17 : end]))
    return status, b"\r\nconnection: close" not in lowered


async def _connection(port: int, source: RequestSource, window: _Window) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    result = window.result
    while not window.stopped:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(HOST, port)
            assert reader is not None
            request = source()
            sent = time.perf_counter()
            writer.write(request)
            status, keep = await _answer(reader)
            if window.measuring and not window.stopped:
                result.latencies.append(time.perf_counter() - sent)
                result.statuses[status] += 1
            if not keep:
                writer.close()
                writer = None
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            if window.measuring and not window.stopped:
                result.failures += 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def _load(
    port: int, source: RequestSource, connections: int, warmup: float, seconds: float
) -> Result:
    window = _Window()
    tasks = [asyncio.create_task(_connection(port, source, window)) for _ in range(connections)]
    await asyncio.sleep(warmup)
    cpu, start = time.process_time(), time.perf_counter()
    window.measuring = True
    await asyncio.sleep(seconds)
    window.stopped = True
    window.result.seconds = time.perf_counter() - start
    window.result.generator_cpu = time.process_time() - cpu
    await asyncio.gather(*tasks)
    return window.result


def run_load(
    port: int, source: RequestSource, *, connections: int, warmup: float, seconds: float
) -> Result:
    """Drive the server on ``port`` with ``connections`` keep-alive connections: ``warmup``
    seconds unrecorded, then a timed window of ``seconds``."""
    return asyncio.run(_load(port, source, connections, warmup, seconds))


def best_of(
    ports: dict[str, int],
    source: RequestSource,
    *,
    rounds: int,
    connections: int,
    warmup: float,
    seconds: float,
) -> dict[str, Result]:
    """Each server in turn, ``rounds`` times; for each, the window with the highest rate
    (the machine may be shared: interleaving spreads a disturbance over both)."""
    best: dict[str, Result] = {}
    for _ in range(rounds):
        for name, port in ports.items():
            result = run_load(port, source, connections=connections, warmup=warmup, seconds=seconds)
            if name not in best or result.rate > best[name].rate:
                best[name] = result
    return best


# --- output --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    endpoint: str
    workers: int
    server: str
    result: Result
    items_per_request: int = 0  # events per request, for events/s; 0: not shown


def format_rows(rows: Sequence[Row]) -> list[str]:
    """The aligned table: a header and one line per row (events/s only where it applies)."""
    per_item = any(row.items_per_request for row in rows)
    header = f"{'endpoint':34s} {'workers':>7s} {'server':12s} {'req/s':>9s} "
    header += f"{'events/s':>10s} " if per_item else ""
    lines = [header + f"{'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s} {'gen CPU':>8s}"]
    for row in rows:
        r = row.result
        line = f"{row.endpoint:34s} {row.workers:>7d} {row.server:12s} {r.rate:>9,.0f} "
        if per_item:
            items = r.rate * row.items_per_request
            line += f"{items:>10,.0f} " if row.items_per_request else f"{'':>10s} "
        cpu = 100 * r.generator_cpu / r.seconds if r.seconds else float("nan")
        line += f"{r.percentile_ms(0.5):>8.1f} {r.percentile_ms(0.99):>8.1f} {r.errors:>7d} "
        lines.append(line + f"{cpu:>7.0f}%")
    return lines


def print_table(rows: Sequence[Row]) -> None:
    for line in format_rows(rows):
        print(line)
    failed = [row for row in rows if row.result.errors]
    for row in failed:
        statuses = dict(sorted(row.result.statuses.items()))
        print(
            f"  errors in {row.endpoint} ({row.server}, {row.workers} worker(s)): statuses "
            f"{statuses}, connection failures {row.result.failures}"
        )


def add_load_options(parser: argparse.ArgumentParser, *, rounds: int, rounds_help: str) -> None:
    """The options every HTTP bench shares: database, workers and the load's shape."""
    parser.add_argument(
        "--database-url",
        help="PostgreSQL server (a private schema is made and dropped); default: SQLite",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--connections", type=int, default=16, help="Keep-alive connections.")
    parser.add_argument("--warmup", type=float, default=2.0, help="Seconds unrecorded first.")
    parser.add_argument("--seconds", type=float, default=8.0, help="Timed window per round.")
    parser.add_argument("--rounds", type=int, default=rounds, help=rounds_help)
