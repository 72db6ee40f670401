"""Outgoing webhooks: signed POSTs from the outbox, retried, against a real HTTP receiver.

The receiver is ``http.server`` on 127.0.0.1 (an ephemeral port) in a thread: it checks
every request's signature as a receiver would and answers with the statuses a test scripts.
The worker runs on a fake clock and without SMTP (webhooks need none).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from tests import support
from tests.support import write_recipe
from typer.testing import CliRunner

from flowlane.cli.main import app
from flowlane.core.errors import ValidationError
from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable
from flowlane.runtime.mail import PermanentDeliveryError
from flowlane.runtime.webhooks import (
    WebhookSender,
    payload,
    signature,
    verify_signature,
    webhook_secret,
)
from flowlane.runtime.worker import Worker, WorkerSettings
from flowlane.store.records import MessageRecord
from flowlane.store.sql import JobQueue, SqlStore
from flowlane.store.sql import tables as t

SECRET = "test-webhook-secret"
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=ZoneInfo("UTC"))

HOOK = """\
key: hook
name: tell the CRM
object: user
blocks:
  start: {{type: start, next: tell}}
  tell:
    type: message
    channel: webhook
    to: "{url}"
    subject: "New user {{{{ object.name }}}}"
    body: '{{"user": "{{{{ object.id }}}}", "name": "{{{{ object.name }}}}"}}'
    next: done
  done: {{type: end, outcome: positive}}
"""


# ---- the receiver ---------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    valid: bool


@dataclass
class Receiver:
    """Answers POSTs with ``statuses`` in turn (then 200); records every request."""

    statuses: list[int] = field(default_factory=list)
    got: list[Received] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/crm"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            valid = verify_signature(
                SECRET,
                self.headers.get("X-Flowlane-Timestamp", ""),
                body,
                self.headers.get("X-Flowlane-Signature", ""),
            )
            with lock:
                state.got.append(Received(dict(self.headers.items()), body, valid))
                status = state.statuses.pop(0) if state.statuses else 200
            if not valid:
                status = 401
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            if status in (301, 302):
                self.send_header("Location", "/elsewhere")
            self.end_headers()
            self.wfile.write(b"gone for good" if status == 410 else b"ok")

        def log_message(self, *_args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- the durable store and the worker -------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> None:
        self.now = T0 + timedelta(seconds=seconds)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/f.db"
    return str(request.getfixturevalue("pg_database"))


Setup = Callable[..., tuple[SqlStore, Worker]]


@pytest.fixture
def setup(tmp_path: Path, db_url: str) -> Iterator[Setup]:
    """``setup(url, **settings)``: a deployed store whose ``hook`` process posts to ``url``,
    one instance started at T0, and a worker without SMTP on the fake clock."""
    opened: list[SqlStore] = []

    def make(url: str, clock: Clock, **settings: Any) -> tuple[SqlStore, Worker]:
        recipe = load_valid_recipe(
            write_recipe(tmp_path / "recipe", {"hook": HOOK.format(url=url)})
        )
        store = open_durable(recipe, db_url)
        opened.append(store)
        deploy(recipe, store)
        support.start_users(store, 1, T0, process="hook")
        worker = Worker(
            store,
            "w1",
            WorkerSettings(**settings),
            clock=clock,
            webhooks=WebhookSender(SECRET, timeout_s=5.0),
        )
        return store, worker

    yield make
    for store in opened:
        store.close()


def outbox_row(store: SqlStore) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(select(t.outbox).where(t.outbox.c.channel == "webhook")).one()


def job_rows(store: SqlStore) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(t.jobs)).all())


# ---- delivery -------------------------------------------------------------------------------


def test_a_500_is_retried_with_the_same_id_then_sent(setup: Setup, receiver: Receiver) -> None:
    receiver.statuses = [500]
    clock = Clock()
    store, worker = setup(receiver.url, clock, backoff_s=2.0)
    [message] = store.messages()
    assert message.channel == "webhook" and message.status == "queued"
    assert [r.id for r in job_rows(store)] == [f"webhook:{message.id}"]

    assert worker.run_once() == 1
    assert len(receiver.got) == 1
    assert outbox_row(store).status == "queued"
    [job] = job_rows(store)
    assert "HTTP 500" in job.last_error
    assert worker.run_once() == 0  # waiting out the backoff

    clock.at(2.5)  # past the backoff of 2 s
    assert worker.run_once() == 1
    assert outbox_row(store).status == "sent"
    assert outbox_row(store).sent_at is not None
    assert job_rows(store) == []

    first, second = receiver.got
    assert first.valid and second.valid
    for got in (first, second):
        assert got.headers["Content-Type"] == "application/json"
        assert got.headers["X-Flowlane-Id"] == message.id
        assert got.headers["X-Flowlane-Signature"] == signature(
            SECRET, int(got.headers["X-Flowlane-Timestamp"]), got.body
        )
    doc = json.loads(second.body)
    assert doc == {
        "id": message.id,
        "process": "hook",
        "block": "tell",
        "instance": message.instance_id,
        "subject": "New user U0",
        "text": '{"user": "u0", "name": "U0"}',
        "data": {"user": "u0", "name": "U0"},
        "created_at": message.created_at.isoformat(),
    }
    assert datetime.fromisoformat(doc["created_at"]) == T0


def test_a_410_is_a_permanent_failure_recorded_on_the_message(
    setup: Setup, receiver: Receiver
) -> None:
    receiver.statuses = [410]
    clock = Clock()
    store, worker = setup(receiver.url, clock)
    assert worker.run_once() == 1
    row = outbox_row(store)
    assert row.status == "failed"
    assert "HTTP 410" in row.last_error and "gone for good" in row.last_error
    assert job_rows(store) == []  # not retried
    clock.at(3600)
    assert worker.run_once() == 0
    assert len(receiver.got) == 1 and receiver.got[0].valid


def test_a_redirect_is_not_followed_and_fails(
    setup: Setup, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.statuses = [302]
    store, worker = setup(receiver.url, Clock())
    monkeypatch.setenv("FLOWLANE_WEBHOOK_SECRET", SECRET)
    worker.webhooks = None  # the worker makes its own sender, with the secret of the env
    worker.run_once()
    row = outbox_row(store)
    assert row.status == "failed" and "HTTP 302" in row.last_error
    assert len(receiver.got) == 1 and receiver.got[0].valid  # /elsewhere was never asked


def test_a_closed_port_is_retried_until_the_attempts_run_out(setup: Setup) -> None:
    clock = Clock()
    store, worker = setup(
        f"http://127.0.0.1:{closed_port()}/hook", clock, max_attempts=2, backoff_s=1.0
    )
    assert worker.run_once() == 1
    [job] = job_rows(store)
    assert job.status == "locked" and job.attempts == 1  # waiting out its backoff
    assert outbox_row(store).status == "queued"

    clock.at(1.5)  # past the backoff of 1 s
    assert worker.run_once() == 1
    row = outbox_row(store)
    assert row.status == "failed" and "refused" in row.last_error.lower()
    [failed] = JobQueue(store).failed()
    assert failed.id.startswith("webhook:") and failed.attempts == 2
    clock.at(3600)
    assert worker.run_once() == 0


# ---- signing, the body, the secret ----------------------------------------------------------


def _message(body: str, to: str = "https://crm.example/hook") -> MessageRecord:
    return MessageRecord("i1.m1", "i1", "hook", "tell", "webhook", to, None, "S", body, T0)


def test_data_is_the_body_only_when_it_is_a_json_object() -> None:
    assert json.loads(payload(_message('{"a": 1}')))["data"] == {"a": 1}
    for body in ("[1, 2]", "plain text", '"a string"', "{broken"):
        doc = json.loads(payload(_message(body)))
        assert doc["data"] is None and doc["text"] == body


def test_signatures_verify_only_the_same_secret_body_and_timestamp() -> None:
    body = payload(_message("hi"))
    sig = signature(SECRET, 1700000000, body)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify_signature(SECRET, "1700000000", body, sig)
    assert not verify_signature("other", "1700000000", body, sig)
    assert not verify_signature(SECRET, "1700000001", body, sig)
    assert not verify_signature(SECRET, "1700000000", body + b" ", sig)
    assert not verify_signature(SECRET, "soon", body, sig)
    assert verify_signature(SECRET, "1700000000", body, sig, now=1700000100)
    assert not verify_signature(SECRET, "1700000000", body, sig, now=1700001000)


@pytest.mark.parametrize("to", ["ftp://crm.example/x", "file:///etc/passwd", "https://", "crm"])
def test_only_http_urls_are_posted(to: str) -> None:
    with pytest.raises(PermanentDeliveryError, match="not an http"):
        WebhookSender(SECRET).post(_message("x", to))


def test_the_secret_command_prints_the_derived_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWLANE_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("FLOWLANE_SECRET", raising=False)
    root = write_recipe(tmp_path / "recipe", {"hook": HOOK.format(url="https://crm.example/h")})
    db = f"sqlite:///{tmp_path}/s.db"
    result = CliRunner().invoke(app, ["webhooks", "secret", str(root), "--db", db])
    assert result.exit_code == 0, result.output
    printed = result.output.strip()
    store = open_durable(load_valid_recipe(root), db)
    try:
        assert printed == webhook_secret(store, {})
        assert len(printed) >= 32
        # the account secret was stored once: the same secret every time
        assert webhook_secret(store, {}) == printed
    finally:
        store.close()
    monkeypatch.setenv("FLOWLANE_WEBHOOK_SECRET", "from-the-env")
    again = CliRunner().invoke(app, ["webhooks", "secret", str(root), "--db", db])
    assert again.exit_code == 0 and again.output.strip() == "from-the-env"


# ---- deploy-time checks ---------------------------------------------------------------------


@pytest.mark.parametrize("to", ["ftp://crm.example/x", "crm.example/hook", "https://"])
def test_deploy_refuses_a_webhook_to_that_is_no_http_url(tmp_path: Path, to: str) -> None:
    root = write_recipe(tmp_path / "recipe", {"hook": HOOK.format(url=to)})
    with pytest.raises(ValidationError, match=r"tell.*is not an http:// or https:// URL"):
        load_valid_recipe(root)


def test_deploy_accepts_people_and_expressions_as_webhook_recipients(tmp_path: Path) -> None:
    text = HOOK.format(url="https://crm.example/h").replace(
        'to: "https://crm.example/h"',
        'to: ["https://crm.example/h", "=object.email", "user:anna", "role:owner"]',
    )
    root = write_recipe(tmp_path / "recipe", {"hook": text})
    assert "hook" in load_valid_recipe(root).processes
