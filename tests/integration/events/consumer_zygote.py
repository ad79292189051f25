"""A consumer "zygote" for the kill test: imports once, then forks a fresh consumer per line.

Starting ``tuneloop consume events`` costs ~0.8 s of imports per process; a hundred kill
rounds would spend most of their time there. This process imports what a consumer needs
once, opens nothing itself, and for each line on stdin forks a child that opens its own
engine, Redis client and stream from the environment's settings (exactly what the command
opens) and consumes until it is killed. It prints each child's pid and reaps dead ones.
"""

from __future__ import annotations

import os
import sys
import threading

from tuneloop.config import Settings
from tuneloop.events.factory import consumer_for, redis_for, stream_for
from tuneloop.events.ingest import ingest_events
from tuneloop.wiring import engine_for


def warm_up() -> None:
    """Open what a consumer opens and run its queries once here (an event naming no
    experiment: refused, nothing written), so each child finds the lazy imports done and
    SQLAlchemy's statement cache filled; then close every connection, so no child shares a
    socket with this process."""
    settings = Settings()
    engine = engine_for(settings, migrate=False)
    event = {"idempotency_key": "warm-up", "kind": "outcome", "unit_id": "u", "arm": "a"}
    ingest_events(engine, "zygote-warm-up", [event | {"experiment_key": "no-such-test"}])
    client = redis_for(settings)
    stream = stream_for(settings, engine, client)  # its lazy imports happen here, once
    consumer_for(settings, engine, stream)
    stream.close()
    if client is not None:
        client.close()
    engine.dispose()


def consume_forever() -> None:
    settings = Settings()
    engine = engine_for(settings, migrate=False)  # the warmed-up engine, its pool empty
    stream = stream_for(settings, engine, redis_for(settings))
    consumer_for(settings, engine, stream).run(threading.Event())


def main() -> None:
    warm_up()
    for _line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                consume_forever()
            finally:
                os._exit(1)
        print(pid, flush=True)
        while True:  # reap the consumers killed so far
            try:
                done, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if done == 0:
                break


if __name__ == "__main__":
    main()
