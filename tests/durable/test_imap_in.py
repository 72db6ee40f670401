"""Inbound email by IMAP polling (issue 6) against a real IMAP server: Dovecot on loopback
(tests/imap_server.py), the course recipe on a SQLite durable store, the worker delivering
to the SMTP sink.

* a purchase email in the mailbox starts S1.1's welcome; the same email twice (one
  Message-ID) is handled once; both end ``\\Seen`` (and moved to the done folder if set);
* a reply to the homework email becomes a comment with its attachment;
* a forged reply address and a stranger are refused: flagged, seen, nothing changes, and
  the next poll does not take them again;
* the database away: the message stays unseen and the next poll handles it; a crash between
  handling and marking seen handles nothing twice;
* STARTTLS and TLS with the server's self-signed certificate; the settings from the
  environment; ``flowlane mail-in --imap --once``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from pathlib import Path

import pytest
import typer
from tests.imap_server import Dovecot
from tests.smtp_sink import SmtpSink
from typer.testing import CliRunner

from flowlane.cli.mailin import mailin_command
from flowlane.core.errors import ValidationError
from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable, request_account
from flowlane.runtime.imapin import ImapError, ImapPoller, ImapSettings, PollResult
from flowlane.runtime.mail import SmtpSettings
from flowlane.runtime.mailin import MailIntake
from flowlane.runtime.worker import Worker
from flowlane.services.account import Account
from flowlane.store.records import TaskRecord
from flowlane.store.sql.store import SqlStore

COURSE = Path(__file__).resolve().parents[2] / "recipes" / "course"
SENDER = "Course <course@course.example>"
PDF = b"%PDF-1.4 the homework of anna"
SEEN = {"\\Seen"}
FLAGGED = {"\\Seen", "\\Flagged"}


@dataclass
class World:
    store: SqlStore
    inbound: SqlStore
    imap: Dovecot
    sink: SmtpSink
    data: Path
    db_dir: Path

    def account(self) -> Account:
        return request_account(self.store, self.data)

    def settings(self, **changes: object) -> ImapSettings:
        values: dict[str, object] = {
            "host": "127.0.0.1",
            "port": self.imap.port,
            "security": "none",
            "username": self.imap.user,
            "password": self.imap.password,
        }
        values.update(changes)
        return ImapSettings(**values)  # type: ignore[arg-type]

    def intake(self) -> MailIntake:
        return MailIntake(self.inbound, data=self.data)

    def poll(self, **changes: object) -> PollResult:
        return ImapPoller(self.intake(), self.settings(**changes)).poll()

    def deliver(self) -> None:
        settings = SmtpSettings(host="127.0.0.1", port=self.sink.port, sender=SENDER)
        Worker(self.store, "w1", smtp=settings).run(until_idle=True)

    def mails_to(self, address: str) -> list[Message]:
        return [m for m in self.sink.messages if address in str(m["To"])]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    recipe = load_valid_recipe(COURSE)
    db_dir = tmp_path / "db"
    db_dir.mkdir()
    db = f"sqlite:///{db_dir / 'course.db'}"
    store = open_durable(recipe, db)
    deploy(recipe, store)
    account = request_account(store, tmp_path / "data")
    account.attempt(
        lambda: account.create_object(
            "user",
            {"name": "Olga", "email": "olga@course.example", "role": "owner"},
            object_id="olga",
        )
    )
    # the poller runs as a process of its own: a store of its own on the same database
    inbound = open_durable(recipe, db)
    with Dovecot(tmp_path / "imap") as imap, SmtpSink() as sink:
        try:
            yield World(store, inbound, imap, sink, tmp_path / "data", db_dir)
        finally:
            inbound.close()
            store.close()


def purchase_email(order: int = 1042) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Shop <payments@shop.example>"
    msg["To"] = "orders@course.example"
    msg["Subject"] = f"New order {order}"
    msg["Message-ID"] = f"<order-{order}@shop.example>"
    name, email = ("Anna Petrova", "anna") if order == 1042 else ("Boris Ivanov", "boris")
    msg.set_content(
        f"You have a new order.\n\nName: {name}\nEmail: {email}@example.com\n"
        "Ticket: with-homework\n"
    )
    return msg.as_bytes()


def reply_email(
    to: str, *, sender: str = "Anna <anna@example.com>", message_id: str = "<r1@example.com>"
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "Re: Homework: Loops"
    msg["Message-ID"] = message_id
    msg.set_content(
        "Here is my homework.\n\nOn Mon, 2 Mar 2026, Course <course@course.example> wrote:\n"
        "> here is the homework\n"
    )
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="loops.pdf")
    return msg.as_bytes()


def homework(world: World) -> tuple[TaskRecord, str]:
    """Anna's homework task and the Reply-To of the homework email the sink received."""
    account = world.account()
    account.attempt(
        lambda: account.create_object(
            "user", {"name": "Anna", "email": "anna@example.com"}, object_id="anna"
        )
    )
    account.attempt(
        lambda: account.start(
            "webinar-homework", "anna", {"topic": "Loops", "homework": "Write a loop"}, by="olga"
        )
    )
    world.deliver()
    assert world.sink.wait_for(1, timeout=5)
    (mail,) = world.mails_to("anna@example.com")
    (task,) = account.store.find_tasks(open_only=True, block="homework")
    reply_to = str(mail["Reply-To"])
    assert reply_to.startswith(f"reply+{task.id}.")
    return task, reply_to


def test_a_purchase_email_in_the_mailbox_starts_the_welcome_once(world: World) -> None:
    world.imap.append(purchase_email())
    world.imap.append(purchase_email())  # the same Message-ID again
    result = world.poll()
    assert (result.handled, result.refused, result.retry) == ([1, 2], [], [])
    assert world.imap.flags() == {1: SEEN, 2: SEEN}
    account = world.account()
    (task,) = account.store.find_tasks(block="check")
    assert task.assignee == "olga" and "Anna Petrova" in task.text
    # nothing is unseen any more: the next poll takes nothing
    assert world.poll() == PollResult([], [], [])
    account.attempt(lambda: account.answer(task, option="yes", fields={}, by="olga"))
    world.deliver()
    assert world.sink.wait_for(1, timeout=5)
    (welcome,) = world.mails_to("anna@example.com")
    assert welcome["Subject"] == "Welcome to Python from scratch"


def test_handled_messages_move_to_the_done_folder(world: World) -> None:
    world.imap.append(purchase_email())
    assert world.poll(done_folder="Flowlane done").handled == [1]  # made on first use
    world.imap.append(purchase_email(order=1043))
    assert world.poll(done_folder="Flowlane done").handled == [2]
    assert world.imap.flags() == {}
    assert world.imap.flags('"Flowlane done"') == {1: SEEN, 2: SEEN}
    assert len(world.account().store.find_tasks(block="check")) == 2


def test_a_reply_in_the_mailbox_becomes_a_comment_with_its_attachment(world: World) -> None:
    task, reply_to = homework(world)
    world.imap.append(reply_email(reply_to))
    world.imap.append(reply_email(reply_to))  # delivered twice: one comment
    assert world.poll().handled == [1, 2]
    assert world.imap.flags() == {1: SEEN, 2: SEEN}
    account = world.account()
    stored = account.store.get_task(task.id)
    assert stored is not None
    (comment,) = stored.comments
    assert (comment["by"], comment["text"]) == ("anna", "Here is my homework.")
    (meta,) = stored.attachments
    assert meta["name"] == "loops.pdf" and comment["attachments"] == [meta["id"]]
    assert account.attachment_content(task.id, meta["id"], by="olga") == PDF


def test_a_forged_reply_is_flagged_and_changes_nothing(world: World) -> None:
    task, reply_to = homework(world)
    local, domain = reply_to.split("@")
    forged = f"{local[:-1]}{'A' if local[-1] != 'A' else 'B'}@{domain}"
    world.imap.append(reply_email(forged, message_id="<forged@example.com>"))
    stranger = "Mallory <mallory@evil.example>"
    world.imap.append(reply_email(reply_to, sender=stranger, message_id="<m@evil.example>"))
    result = world.poll()
    assert (result.handled, result.refused, result.retry) == ([], [1, 2], [])
    assert world.imap.flags() == {1: FLAGGED, 2: FLAGGED}
    stored = world.account().store.get_task(task.id)
    assert stored is not None and stored.comments == [] and stored.attachments == []
    assert world.poll() == PollResult([], [], [])  # never tried again


def test_the_database_away_leaves_the_message_for_the_next_poll(world: World) -> None:
    world.imap.append(purchase_email())
    world.inbound.engine.dispose()  # no pooled connection keeps the old file open
    away = world.db_dir.rename(world.db_dir.with_name("db-away"))
    try:
        result = world.poll()
    finally:
        away.rename(world.db_dir)
    assert (result.handled, result.refused, result.retry) == ([], [], [1])
    assert world.imap.flags() == {1: set()}
    assert world.account().store.find_tasks(block="check") == []
    assert world.poll().handled == [1]
    assert world.imap.flags() == {1: SEEN}
    assert len(world.account().store.find_tasks(block="check")) == 1


def test_a_crash_before_marking_seen_handles_nothing_twice(world: World) -> None:
    world.imap.append(purchase_email())
    # the poller handled the message and died before its STORE \Seen
    assert world.intake().process(purchase_email(), []).code == 250
    assert world.imap.flags() == {1: set()}
    assert world.poll().handled == [1]
    assert world.imap.flags() == {1: SEEN}
    assert len(world.account().store.find_tasks(block="check")) == 1


def test_starttls_and_tls_with_the_servers_certificate(world: World) -> None:
    world.imap.append(purchase_email())
    starttls = world.poll(security="starttls", cafile=world.imap.cafile)
    assert starttls.handled == [1]
    world.imap.append(purchase_email(order=1043))
    tls = world.poll(security="tls", port=world.imap.tls_port, cafile=world.imap.cafile)
    assert tls.handled == [2]
    assert world.imap.flags() == {1: SEEN, 2: SEEN}


def test_an_unreadable_mailbox_is_an_imap_error(world: World) -> None:
    world.imap.append(purchase_email())
    with pytest.raises(ImapError, match="certificate verify failed"):
        world.poll(security="tls", port=world.imap.tls_port)  # the system's CAs only
    with pytest.raises(ImapError, match="LOGIN failed"):
        world.poll(password="wrong")
    with pytest.raises(ImapError, match="SELECT"):
        world.poll(folder="No such folder")
    assert world.imap.flags() == {1: set()}


def test_settings_from_the_environment() -> None:
    env = {
        "FLOWLANE_IMAP_HOST": "imap.example.com",
        "FLOWLANE_IMAP_USER": "orders@example.com",
        "FLOWLANE_IMAP_PASSWORD": " pass word ",
    }
    settings = ImapSettings.from_env(env)
    assert (settings.security, settings.effective_port, settings.folder) == ("tls", 993, "INBOX")
    assert settings.password == " pass word " and "pass word" not in repr(settings)
    starttls = ImapSettings.from_env({**env, "FLOWLANE_IMAP_SECURITY": "STARTTLS"})
    assert (starttls.security, starttls.effective_port) == ("starttls", 143)
    full = ImapSettings.from_env(
        {**env, "FLOWLANE_IMAP_PORT": "1143", "FLOWLANE_IMAP_FOLDER": "Orders",
         "FLOWLANE_IMAP_DONE": "Orders/done", "FLOWLANE_IMAP_CAFILE": "/etc/ca.pem"}
    )  # fmt: skip
    assert (full.effective_port, full.folder, full.done_folder, full.cafile) == (
        1143,
        "Orders",
        "Orders/done",
        "/etc/ca.pem",
    )
    with pytest.raises(ValidationError, match="FLOWLANE_IMAP_HOST, FLOWLANE_IMAP_PASSWORD"):
        ImapSettings.from_env({"FLOWLANE_IMAP_USER": "x"})
    with pytest.raises(ValidationError, match="FLOWLANE_IMAP_PORT"):
        ImapSettings.from_env({**env, "FLOWLANE_IMAP_PORT": "imap"})
    with pytest.raises(ValidationError, match="FLOWLANE_IMAP_SECURITY"):
        ImapSettings.from_env({**env, "FLOWLANE_IMAP_SECURITY": "ssl"})


def test_the_cli_polls_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    app = typer.Typer()  # `flowlane mail-in` alone (flowlane.cli.main wires every shell)
    app.command()(mailin_command)
    world.imap.append(purchase_email())
    for name, value in {
        "HOST": "127.0.0.1",
        "PORT": str(world.imap.port),
        "SECURITY": "starttls",
        "CAFILE": world.imap.cafile,
        "USER": world.imap.user,
        "PASSWORD": world.imap.password,
    }.items():
        monkeypatch.setenv(f"FLOWLANE_IMAP_{name}", value)
    monkeypatch.setenv("FLOWLANE_DATA", str(world.data))
    db = f"sqlite:///{world.db_dir / 'course.db'}"
    args = [str(COURSE), "--db", db, "--imap", "--once"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 handled, 0 refused, 0 left for the next poll" in result.output
    assert world.imap.flags() == {1: SEEN}
    assert len(world.account().store.find_tasks(block="check")) == 1
    monkeypatch.setenv("FLOWLANE_IMAP_PASSWORD", "wrong")
    failed = CliRunner().invoke(app, args)
    assert failed.exit_code == 1 and "LOGIN failed" in failed.output
    no_imap = CliRunner().invoke(app, [str(COURSE), "--db", db, "--once"])
    assert no_imap.exit_code == 1 and "--once needs --imap" in no_imap.output
