"""The serving layer's cache of routing tables, on the real store."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, event

from tuneloop.serving.routes import RouteCache
from tuneloop.store.models_registry import record_model_version, set_champion

TENANT = "acme"


def test_an_expired_table_is_read_once_however_many_requests_wait(engine: Engine) -> None:
    record_model_version(
        engine, TENANT, model_id="m", version="1", base_model="tiny", status="challenger"
    )
    set_champion(engine, TENANT, "m", "1")
    cache = RouteCache(engine, ttl_seconds=60)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    start = threading.Barrier(8)
    routed: list[str] = []

    def ask() -> None:
        start.wait()
        routed.append(cache.route(TENANT, "unit-1").model)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert routed == ["m@1"] * 8
    one_read = len(statements)
    assert 0 < one_read <= 4  # the table's few queries, once, not once per request
    cache.route(TENANT, "unit-2")
    assert len(statements) == one_read  # fresh: no database access
