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
from tuneloop.wiring import engine_for


def consume_forever() -> None:
    settings = Settings()
    engine = engine_for(settings, migrate=False)
    stream = stream_for(settings, engine, redis_for(settings))
    consumer_for(settings, engine, stream).run(threading.Event())


def main() -> None:
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
