"""Runs a chunk iterator one step ahead in a thread, so fetching overlaps processing.

The collector's time was the database's (sorting, sending) plus ours (building
examples, encoding JSON), one after the other. psycopg releases the GIL while it waits
on the socket, so a producer thread fetching chunk n+1 while the caller works on chunk n
hides most of the wait. The queue is bounded: memory stays at ``depth`` chunks.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


class _Producer(Generic[T]):
    def __init__(self, source: Iterator[T], depth: int) -> None:
        self.source = source
        self.queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="tuneloop-prefetch", daemon=True)

    def put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            for item in self.source:
                if not self.put(item):
                    break
            self.put(_DONE)
        except BaseException as error:  # handed to the consumer, re-raised there
            self.put(_Failure(error))
        finally:
            close = getattr(self.source, "close", None)
            if close is not None:
                close()  # the source's own cleanup (cursor, connection) runs in its thread


def prefetched(source: Iterator[T], *, depth: int = 2) -> Iterator[T]:
    """Iterate ``source`` in a background thread, ``depth`` items ahead."""
    producer: _Producer[T] = _Producer(source, depth)
    producer.thread.start()
    try:
        while True:
            item = producer.queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        producer.stop.set()
        producer.thread.join()
