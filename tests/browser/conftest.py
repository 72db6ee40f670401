"""Browser tests: a live flowlane server on loopback (:mod:`tests.live`) and Debian's
chromium driven by Playwright.

* ``browser`` — one headless chromium for the whole session (``/usr/bin/chromium``; the
  Makefile installs it; never ``playwright install``).
* ``live_server(recipe)`` — a factory of :class:`tests.live.Live` servers (emails go to the
  mail sink); ``live.advance(td)`` moves the server's clock, ``live.work()`` runs what is due.
* ``page`` — a fresh browser context and page for the test; ``login(page, live, role)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from tests.live import PASSWORD, Live, live_servers

__all__ = ["Live", "htmx_settled", "login"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def _seed_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("browser-seeds")


@pytest.fixture
def live_server(tmp_path: Path, _seed_cache: Path) -> Iterator[Callable[..., Live]]:
    """``live_server("homework")`` -> a :class:`Live` server for the test (stopped after)."""
    with live_servers(tmp_path, _seed_cache) as start:
        yield start


def login(page: Page, live: Live, role: str, password: str = PASSWORD) -> None:
    """Log the user of ``role`` (a key of ``live.users``) in through the login form."""
    page.goto(f"{live.url}/login")
    page.fill("#email", f"{live.users[role]}@example.com")
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def htmx_settled(page: Page) -> None:
    """Wait until htmx has no request in flight and has settled what it swapped in: htmx 2
    wires up new content (its hx- attributes) only when it settles, 20 ms after the swap; a
    test acting inside that window would act on elements that do nothing yet."""
    page.wait_for_function(
        "() => !document.querySelector("
        "'.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )
