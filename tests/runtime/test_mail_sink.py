"""Mail sink mode and the delivery state of messages, through the durable worker.

A process sends a Markdown email; a worker with ``mail="sink"`` stores it in ``sink_mails``
instead of sending it (once, also when the delivery is retried after a crash), and
:mod:`flowlane.services.messages` reads it back parsed. A worker sending over SMTP (a real
aiosmtpd server on loopback) records temporary and permanent refusals on the message, and a
bounce marks a sent message ``bounced``. SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tests.smtp_sink import SmtpSink
from tests.support import write_recipe

from flowlane.core.errors import NotFound, Refused
from flowlane.model.recipe import Recipe
from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable
from flowlane.runtime.faults import Faults
from flowlane.runtime.mail import SmtpSettings, mail_mode, outbox_id_of
from flowlane.runtime.worker import Worker, WorkerSettings
from flowlane.services import messages
from flowlane.services.account import Account
from flowlane.services.signing import account_secret
from flowlane.store.sql import SqlStore

WELCOME = """\
key: welcome
name: welcome email
object: user
blocks:
  start: {type: start, next: hello}
  hello: {type: message, to: "=object.id", template: welcome, next: done}
  done: {type: end}
"""

TEMPLATE = """\
---
subject: "Welcome, {{ object.name }}"
---
Hello **{{ object.name }}**,

| course | starts |
|--------|--------|
| Python | Monday |
"""

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Moscow"))
NASTY = "<script>alert(1)</script>"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class CrashAfterSend(Faults):
    """The worker dies between handing the email over and recording it as sent."""

    def hit(self, point: str) -> None:
        if point == "after_send":
            raise KeyboardInterrupt("killed after send")


@pytest.fixture
def recipe(tmp_path: Path) -> Recipe:
    root = write_recipe(tmp_path / "r", {"welcome": WELCOME}, templates={"welcome": TEMPLATE})
    return load_valid_recipe(root)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, recipe: Recipe, tmp_path: Path) -> Iterator[SqlStore]:
    url = (
        f"sqlite:///{tmp_path}/m.db"
        if request.param == "sqlite"
        else str(request.getfixturevalue("pg_database"))
    )
    opened = open_durable(recipe, url)
    try:
        deploy(recipe, opened)
        yield opened
    finally:
        opened.close()


def start(store: SqlStore, name: str, email: str = "anna@example.com", uid: str = "anna") -> str:
    account = Account(store, T0)
    with store.transaction():
        account.create_object("user", {"name": name, "email": email}, object_id=uid, launches=False)
        return account.start("welcome", uid)


def worker(store: SqlStore, clock: Clock, **kw: Any) -> Worker:
    settings = WorkerSettings(max_attempts=kw.pop("max_attempts", 5), backoff_s=2.0)
    return Worker(store, "w1", settings, clock=clock, **kw)


def drain(w: Worker) -> None:
    for _ in range(20):
        if w.run_once() == 0:
            return
    raise AssertionError("the worker never came to rest")


# ---- the mail sink ---------------------------------------------------------------------------


def test_the_sink_stores_the_email_once_and_reads_it_back_parsed(store: SqlStore) -> None:
    iid = start(store, NASTY)
    clock = Clock()
    w = worker(store, clock, mail="sink", smtp=SmtpSettings(sender="robot@school.example"))
    drain(w)
    w.close()

    account = Account(store, T0)
    (stored,) = messages.sink_mails(account)
    assert stored.outbox_id == f"{iid}.m2"
    assert stored.message_id.startswith(f"<{iid}.m2.")  # signed
    assert outbox_id_of(stored.message_id, account_secret(store)) == stored.outbox_id
    assert stored.to == "anna@example.com"
    assert stored.subject == f"Welcome, {NASTY}"
    assert stored.stored_at == T0

    mail = messages.sink_mail(account, stored.id)
    assert (mail.from_, mail.to, mail.subject) == (
        "robot@school.example",
        "anna@example.com",
        f"Welcome, {NASTY}",
    )
    assert mail.text.startswith(f"Hello **{NASTY}**,")  # the Markdown as written
    assert mail.html is not None
    # The name a template put in arrives escaped in the HTML part, never as a tag.
    assert "<strong>&lt;script&gt;alert(1)&lt;/script&gt;</strong>" in mail.html
    assert "<script>" not in mail.html
    assert "<th>course</th>" in mail.html and "<td>Python</td>" in mail.html

    (delivery,) = messages.outbox(account)
    assert (delivery.id, delivery.status, delivery.attempts) == (f"{iid}.m2", "sent", 1)
    assert delivery.sent_at == T0 and delivery.last_error is None
    assert messages.outbox(account, status="queued") == []


def test_a_delivery_retried_after_a_crash_is_stored_once(store: SqlStore) -> None:
    iid = start(store, "Anna")
    clock = Clock()
    crashing = worker(store, clock, mail="sink", faults=CrashAfterSend())
    with pytest.raises(KeyboardInterrupt):
        drain(crashing)
    account = Account(store, T0)
    assert len(messages.sink_mails(account)) == 1
    assert [d.status for d in messages.outbox(account)] == ["queued"]

    clock.now = T0 + timedelta(seconds=WorkerSettings().lease_s + 1)  # the lease ran out
    w = worker(store, clock, mail="sink")
    drain(w)
    w.close()
    (stored,) = messages.sink_mails(account)
    assert stored.outbox_id == f"{iid}.m2"
    (delivery,) = messages.outbox(account)
    assert (delivery.status, delivery.attempts) == ("sent", 2)


def test_sink_reading_refuses_what_is_not_there(store: SqlStore) -> None:
    account = Account(store, T0)
    with pytest.raises(NotFound, match="no stored email 42"):
        messages.sink_mail(account, 42)
    with pytest.raises(Refused, match="size"):
        messages.sink_mails(account, size=0)
    with pytest.raises(Refused, match="page"):
        messages.outbox(account, page=0)
    with pytest.raises(Refused, match="status must be one of"):
        messages.outbox(account, status="lost")


def test_mail_mode_comes_from_flowlane_mail() -> None:
    assert mail_mode({}) == "smtp"
    assert mail_mode({}, default="sink") == "sink"
    assert mail_mode({"FLOWLANE_MAIL": " Sink "}) == "sink"
    assert mail_mode({"FLOWLANE_MAIL": "smtp"}, default="sink") == "smtp"
    with pytest.raises(Exception, match="FLOWLANE_MAIL must be one of smtp, sink"):
        mail_mode({"FLOWLANE_MAIL": "pigeon"})


# ---- delivery state over SMTP ----------------------------------------------------------------


def test_permanent_and_temporary_refusals_are_recorded_on_the_message(store: SqlStore) -> None:
    refused = start(store, "Anna", "anna@example.com", "anna")
    later = start(store, "Boris", "boris@example.com", "boris")
    clock = Clock()
    with SmtpSink(
        reject_codes={
            "anna@example.com": "550 5.1.1 no such user",
            "boris@example.com": "451 4.3.0 try later",
        }
    ) as sink:
        w = worker(store, clock, smtp=SmtpSettings(port=sink.port, timeout_s=5.0))
        drain(w)
        clock.now = T0 + timedelta(seconds=3)  # past the first backoff: a second try
        drain(w)
        w.close()
    account = Account(store, T0)
    by_id = {d.id: d for d in messages.outbox(account)}
    failed = by_id[f"{refused}.m2"]
    assert (failed.status, failed.attempts, failed.sent_at) == ("failed", 1, None)
    assert failed.last_error is not None and "550" in failed.last_error
    waiting = by_id[f"{later}.m2"]
    assert (waiting.status, waiting.attempts) == ("queued", 2)
    assert waiting.last_error is not None and "451" in waiting.last_error
    assert [d.id for d in messages.outbox(account, status="failed")] == [f"{refused}.m2"]


def test_a_bounce_marks_a_sent_email_bounced_and_it_is_not_sent_again(store: SqlStore) -> None:
    iid = start(store, "Anna")
    clock = Clock()
    with SmtpSink() as sink:
        w = worker(store, clock, smtp=SmtpSettings(port=sink.port, timeout_s=5.0))
        drain(w)
        assert sink.wait_for(1, timeout=2)
        with store.transaction():
            assert store.mark_bounced(f"{iid}.m2", "550 mailbox unavailable")
            assert not store.mark_bounced("i404.m1", "550 mailbox unavailable")
        drain(w)
        w.close()
        assert len(sink.messages) == 1
    (delivery,) = messages.outbox(Account(store, T0), status="bounced")
    assert delivery.id == f"{iid}.m2"
    assert delivery.last_error == "550 mailbox unavailable"
    assert delivery.sent_at == T0
