"""Browser fixtures: the app served by uvicorn on a real port, and Debian's Chromium.

The browser is ``/usr/bin/chromium`` (CI installs the Debian package; nothing is downloaded).
Without it these tests skip with a reason, unless ``TUNELOOP_REQUIRE_SERVICES=1`` (CI),
where they fail.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from dashboard_server import Served

from tuneloop.api.app import create_app
from tuneloop.config import Settings

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE = os.environ.get("TUNELOOP_REQUIRE_SERVICES") == "1"


@pytest.fixture
def served_settings(settings: Settings) -> Settings:
    """The settings the server runs with (a test module may prepare its own)."""
    return settings


@pytest.fixture
def served(served_settings: Settings) -> Iterator[Served]:
    """``create_app(served_settings)`` under uvicorn in a thread, on a free port."""
    settings = served_settings
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield Served(f"http://127.0.0.1:{port}", app, settings)
    server.should_exit = True
    thread.join(30)


# Per module, not per session: while sync_playwright() is open its event loop runs in the
# main thread, and every later test's asyncio.run() would fail ("cannot be called from a
# running event loop").
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
        if REQUIRE:
            pytest.fail(f"TUNELOOP_REQUIRE_SERVICES=1 but {message}")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Any]:
    context = browser.new_context(base_url=served.url)
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()
