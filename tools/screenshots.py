"""``make screenshots``: pictures of the main pages of the web UI, for the README.

Installs the demo account (``flowlane demo``'s, see :mod:`flowlane.runtime.demo`) in a
temporary SQLite file, lets five minutes pass on the server's clock (so the new orders' tasks
are open and the emails are in the mail sink), serves the app on a free loopback port and
drives Debian's chromium with Playwright through the pages, writing
``docs/screenshots/<name>.png``. Prints each file it wrote.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from playwright.sync_api import Page, sync_playwright

from flowlane.runtime.demo import DEMO_PASSWORD, DOMAIN, demo_recipe, install_demo
from flowlane.runtime.durable import open_durable
from flowlane.runtime.mail import SmtpSettings
from flowlane.runtime.worker import Worker, WorkerSettings
from flowlane.services.account import Account
from flowlane.store.files import LocalFileStore
from flowlane.web.app import Container, create_app

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
OFFSET = timedelta(minutes=5)


def now() -> datetime:
    return datetime.now(UTC) + OFFSET


@dataclass(frozen=True)
class Shot:
    name: str
    who: str
    path: str
    wait_for: str = "main"
    prepare: Callable[[Page], None] | None = None
    full_page: bool = False


def _first_link(page: Page, selector: str) -> None:
    page.locator(selector).first.click()
    page.wait_for_load_state("networkidle")


SHOTS = (
    Shot("login-ru", "", "/lang/ru?next=/login"),
    Shot("inbox", "maria", "/inbox", "main table, main .empty"),
    Shot(
        "task", "maria", "/inbox", "main", lambda p: _first_link(p, "main table a[href^='/tasks/']")
    ),
    Shot("task-board", "maria", "/tasks/board", ".board, main .empty"),
    Shot("objects", "olga", "/objects/order", "main table"),
    Shot("kanban", "olga", "/kanban/event", ".board"),
    Shot("processes", "olga", "/processes", "main table"),
    Shot("process-general", "olga", "/processes/new-order", "main"),
    Shot("designer", "olga", "/processes/reach-by-phone/designer", ".djs-container"),
    Shot("statistics", "olga", "/processes/homework/statistics", "canvas"),
    Shot("outbox", "olga", "/outbox", "main"),
    Shot("cabinet", "anna", "/cabinet", "main"),
)


def _serve(container: Container) -> tuple[uvicorn.Server, threading.Thread, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(container), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def _login(page: Page, url: str, who: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{url}/login")
    page.fill("#email", f"{who}@{DOMAIN}")
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/login" not in u)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only", nargs="*", help="names of the shots to take")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/screens.db"
        recipe = demo_recipe()
        setup = open_durable(recipe, db)
        install_demo(recipe, setup, Path(tmp) / "data")
        setup.close()
        worker_store = open_durable(recipe, db)
        Worker(
            worker_store,
            "screens",
            WorkerSettings(poll_s=0.01),
            smtp=SmtpSettings(),
            clock=now,
            mail="sink",
        ).run(until_idle=True)
        worker_store.close()

        def make_account(container: Container) -> Account:
            acc = Account(container.store, now(), files=LocalFileStore(Path(tmp) / "data"))
            acc.runner.fire_due_timers = False
            return acc

        store = open_durable(recipe, db)
        server, thread, url = _serve(
            Container(store=store, data=Path(tmp) / "data", make_account=make_account)
        )
        written = 0
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                context = browser.new_context(
                    viewport={"width": 1360, "height": 820}, locale="en-US"
                )
                page = context.new_page()
                page.set_default_timeout(15_000)
                current = None
                for shot in SHOTS:
                    if args.only and shot.name not in args.only:
                        continue
                    if shot.who != current:
                        if shot.who:
                            _login(page, url, shot.who)
                        else:
                            page.context.clear_cookies()
                        current = shot.who
                    page.goto(url + shot.path)
                    if shot.prepare is not None:
                        shot.prepare(page)
                    page.wait_for_selector(shot.wait_for)
                    page.wait_for_timeout(400)  # charts and diagrams finish drawing
                    target = args.out / f"{shot.name}.png"
                    page.screenshot(path=str(target), full_page=shot.full_page)
                    print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)
                    written += 1
                    if shot.name == "login-ru":
                        page.goto(f"{url}/lang/en?next=/login")
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            store.close()
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
