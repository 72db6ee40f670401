"""A live flowlane server on loopback for the browser and end-to-end tests.

``live_servers(tmp_path, cache, smtp=None)`` is a context manager yielding ``start(recipe,
setup=None) -> Live``: a seeded SQLite copy of the recipe (users of every role, see
``tests.api.conftest``), the app served by uvicorn on a free 127.0.0.1 port, and a movable
clock shared by the requests and :meth:`Live.work` (a worker run until idle).

Time: the server's clock is the wall clock plus :attr:`Live.offset`; ``live.advance(td)``
moves it forward, ``live.work()`` then runs what became due (timers, launches, deliveries),
as the embedded worker of ``flowlane serve`` would. Emails go to the real SMTP server
``smtp`` when one is given (:class:`tests.smtp_sink.SmtpSink`), else to the mail sink.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from tests.api.conftest import PASSWORD, Seeded, seed
from tests.smtp_sink import SmtpSink

from flowlane.runtime.durable import load_valid_recipe, open_durable
from flowlane.runtime.mail import SmtpSettings
from flowlane.runtime.worker import Worker, WorkerSettings
from flowlane.services.account import Account
from flowlane.store.files import LocalFileStore
from flowlane.store.sql.store import SqlStore
from flowlane.web.app import Container, create_app

RECIPES = Path(__file__).resolve().parents[1] / "recipes"

__all__ = ["PASSWORD", "RECIPES", "Live", "free_port", "live_servers", "text_of"]


def text_of(mail: Message) -> str:
    """The text/plain part of an email the SMTP server received."""
    for part in mail.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/plain part in {mail['Subject']!r}")


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
    tokens: dict[str, str]
    store: SqlStore
    data: Path
    smtp: SmtpSink | None = None
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

    def api(self, role: str) -> httpx.Client:
        """An HTTP client of the REST API with the API token of the user of ``role``."""
        return httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
            timeout=30,
        )

    def work(self) -> None:
        """Run what is due now (timers, queued launches, emails) with a worker until idle."""
        store = open_durable(load_valid_recipe(self.recipe), self.db_url)
        try:
            if self.smtp is not None:
                smtp, mail = SmtpSettings(port=self.smtp.port, sender="school@example.com"), "smtp"
            else:
                smtp, mail = SmtpSettings(), "sink"
            worker = Worker(
                store,
                "live-tests",
                WorkerSettings(poll_s=0.01),
                smtp=smtp,
                clock=self.now,
                mail=mail,  # type: ignore[arg-type]
            )
            worker.run(until_idle=True)
        finally:
            store.close()


_SEEDS: dict[tuple[str, str], tuple[Path, Seeded]] = {}


def _seeded_copy(recipe: str, tmp: Path, cache: Path) -> Seeded:
    key = (str(cache), recipe)
    if key not in _SEEDS:
        path = cache / f"{recipe}.db"
        _SEEDS[key] = (path, seed(f"sqlite:///{path}", RECIPES / recipe))
    source, template = _SEEDS[key]
    target = tmp / f"{recipe}.db"
    shutil.copyfile(source, target)
    return Seeded(f"sqlite:///{target}", template.users, template.tokens)


@contextmanager
def live_servers(
    tmp_path: Path, cache: Path, smtp: SmtpSink | None = None
) -> Iterator[Callable[..., Live]]:
    """Yields ``start(recipe, setup=None)``; every server started is stopped at the end."""
    started: list[tuple[uvicorn.Server, threading.Thread, SqlStore, SqlStore]] = []

    def start(recipe: str = "homework", setup: Callable[[Live], Any] | None = None) -> Live:
        seeded = _seeded_copy(recipe, tmp_path, cache)
        loaded = load_valid_recipe(RECIPES / recipe)
        data = tmp_path / "data"
        port = free_port()
        live = Live(
            url=f"http://127.0.0.1:{port}",
            recipe=RECIPES / recipe,
            db_url=seeded.url,
            users=dict(seeded.users),
            tokens=dict(seeded.tokens),
            store=open_durable(loaded, seeded.url),
            data=data,
            smtp=smtp,
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
        started.append((server, thread, server_store, live.store))
        return live

    try:
        yield start
    finally:
        for server, thread, server_store, test_store in started:
            server.should_exit = True
            thread.join(timeout=10)
            server_store.close()
            test_store.close()
