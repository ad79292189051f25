"""The prefetching iterator: same items in order, errors re-raised, early exit cleans up."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tuneloop.collect.prefetch import prefetched


def test_items_arrive_in_order() -> None:
    assert list(prefetched(iter(range(100)), depth=3)) == list(range(100))


def test_an_error_in_the_source_is_raised_to_the_consumer() -> None:
    def source() -> Iterator[int]:
        yield 1
        raise ValueError("boom")

    got = []
    with pytest.raises(ValueError, match="boom"):
        for item in prefetched(source()):
            got.append(item)
    assert got == [1]


def test_stopping_early_closes_the_source_in_its_thread() -> None:
    closed = threading.Event()
    produced = []

    def source() -> Iterator[int]:
        try:
            for i in range(1_000_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    stream = prefetched(source(), depth=2)
    assert next(stream) == 0
    stream.close()
    assert closed.wait(5)
    assert len(produced) < 10  # bounded: the producer never ran far ahead
    assert not any(t.name == "tuneloop-prefetch" for t in threading.enumerate())
