"""Browser tests: a live flowlane server on loopback and Debian's chromium driven by Playwright.

* ``browser`` — one headless chromium for the whole session (``/usr/bin/chromium``; the
  Makefile installs it; never ``playwright install``).
* ``live_server(recipe)`` — a factory: a seeded SQLite copy of the recipe (users of every
  role, see ``tests.api.conftest``), the app served by uvicorn on a free 127.0.0.1 port, a
  movable clock shared by the requests and :meth:`Live.work` (a worker run until idle).
* ``page`` — a fresh browser context and page for the test; ``login(page, live, role)``.

Time: the server's clock is the wall clock plus :attr:`Live.offset`; ``live.advance(td)``
moves it forward, ``live.work()`` then runs what became due (timers, launches, deliveries in
sink mode), as the embedded worker of ``flowlane serve`` would.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright
from tests.api.conftest import PASSWORD, Seeded, seed

from flowlane.runtime.durable import load_valid_recipe, open_durable
from flowlane.runtime.mail import SmtpSettings
from flowlane.runtime.worker import Worker, WorkerSettings
from flowlane.services.account import Account
from flowlane.store.files import LocalFileStore
from flowlane.store.sql.store import SqlStore
from flowlane.web.app import Container, create_app

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    """A running server over a seeded database."""

    url: str
    recipe: Path
    db_url: str
    users: dict[str, str]
    store: SqlStore
    data: Path
    offset: timedelta = field(default_factory=timedelta)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        """Move the server's clock forward (requests and :meth:`work` see it)."""
        self.offset += delta

    def account(self) -> Account:
        """An account on the test's own store, for setting up data (run changes in
        ``attempt``); it fires no timers (that is :meth:`work`)."""
        acc = Account(self.store, self.now(), files=LocalFileStore(self.data))
        acc.runner.fire_due_timers = False
        return acc

    def work(self) -> None:
        """Run what is due now (timers, queued launches, emails into the mail sink)."""
        store = open_durable(load_valid_recipe(self.recipe), self.db_url)
        try:
            worker = Worker(
                store,
                "browser-tests",
                WorkerSettings(poll_s=0.01),
                smtp=SmtpSettings(),
                clock=self.now,
                mail="sink",
            )
            worker.run(until_idle=True)
        finally:
            store.close()


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


_SEEDS: dict[str, tuple[Path, Seeded]] = {}


def _seeded_copy(recipe: str, tmp: Path, cache: Path) -> Seeded:
    if recipe not in _SEEDS:
        path = cache / f"{recipe}.db"
        _SEEDS[recipe] = (path, seed(f"sqlite:///{path}", RECIPES / recipe))
    source, template = _SEEDS[recipe]
    target = tmp / f"{recipe}.db"
    shutil.copyfile(source, target)
    return Seeded(f"sqlite:///{target}", template.users, template.tokens)


@pytest.fixture(scope="session")
def _seed_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("browser-seeds")


@pytest.fixture
def live_server(tmp_path: Path, _seed_cache: Path) -> Iterator[Callable[..., Live]]:
    """``live_server("homework")`` -> a :class:`Live` server for the test (stopped after)."""
    started: list[tuple[uvicorn.Server, threading.Thread, SqlStore]] = []

    def start(recipe: str = "homework", setup: Callable[[Live], Any] | None = None) -> Live:
        seeded = _seeded_copy(recipe, tmp_path, _seed_cache)
        loaded = load_valid_recipe(RECIPES / recipe)
        data = tmp_path / "data"
        port = free_port()
        live = Live(
            url=f"http://127.0.0.1:{port}",
            recipe=RECIPES / recipe,
            db_url=seeded.url,
            users=dict(seeded.users),
            store=open_durable(loaded, seeded.url),
            data=data,
        )
        if setup is not None:
            setup(live)
        server_store = open_durable(loaded, seeded.url)

        def make_account(container: Container) -> Account:
            acc = Account(container.store, live.now(), files=LocalFileStore(data))
            acc.runner.fire_due_timers = False
            return acc

        container = Container(
            store=server_store, public_url=live.url, data=data, make_account=make_account
        )
        config = uvicorn.Config(
            create_app(container), host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="live-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)
        started.append((server, thread, server_store))
        return live

    try:
        yield start
    finally:
        for server, thread, server_store in started:
            server.should_exit = True
            thread.join(timeout=10)
            server_store.close()


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
