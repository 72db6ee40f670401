"""Inbound email end to end over real SMTP on loopback (issue 6): the ``flowlane mail-in``
handler served by aiosmtpd, the course recipe on a SQLite durable store, and the worker
delivering to the SMTP sink.

* S1.1: a purchase email → the owner's task → yes → the welcome email with the login and
  the password reaches the sink.
* S1.2 step 4: the homework email carries the task's reply address; a reply with an
  attachment becomes a comment with the file and the owner is notified; a forged reply
  address is refused with 550 and a reply delivered twice is one comment.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from pathlib import Path

import pytest
from tests.smtp_sink import SmtpSink, free_port

from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable, request_account
from flowlane.runtime.mail import SmtpSettings
from flowlane.runtime.mailin import InboundMailHandler, MailInServer
from flowlane.runtime.worker import Worker
from flowlane.services.account import Account
from flowlane.store.records import TaskRecord
from flowlane.store.sql.store import SqlStore

COURSE = Path(__file__).resolve().parents[2] / "recipes" / "course"
SENDER = "Course <course@course.example>"
PDF = b"%PDF-1.4 the homework of anna"


@dataclass
class World:
    store: SqlStore
    mail_in: MailInServer
    sink: SmtpSink
    data: Path

    def account(self) -> Account:
        return request_account(self.store, self.data)

    def send(self, msg: EmailMessage, to: list[str] | None = None) -> None:
        """Hand ``msg`` to mail-in over SMTP (raises on a refusal, as a relay sees it)."""
        with smtplib.SMTP("127.0.0.1", self.mail_in.port, timeout=10) as smtp:
            smtp.send_message(msg, to_addrs=to)

    def deliver(self) -> None:
        """Run a worker until nothing is due: the outbox goes to the sink."""
        settings = SmtpSettings(host="127.0.0.1", port=self.sink.port, sender=SENDER)
        Worker(self.store, "w1", smtp=settings).run(until_idle=True)

    def mails_to(self, address: str) -> list[Message]:
        return [m for m in self.sink.messages if address in str(m["To"])]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    recipe = load_valid_recipe(COURSE)
    db = f"sqlite:///{tmp_path / 'course.db'}"
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
    # mail-in runs as a process of its own: a store of its own on the same database
    inbound = open_durable(recipe, db)
    handler = InboundMailHandler(inbound, data=tmp_path / "data")
    server = MailInServer(handler, "127.0.0.1", free_port())
    with SmtpSink() as sink, server:
        try:
            yield World(store, server, sink, tmp_path / "data")
        finally:
            inbound.close()
            store.close()


def purchase_email() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Shop <payments@shop.example>"
    msg["To"] = "orders@course.example"
    msg["Subject"] = "New order 1042"
    msg["Message-ID"] = "<order-1042@shop.example>"
    msg.set_content(
        "You have a new order.\n\nName: Anna Petrova\nEmail: anna@example.com\n"
        "Ticket: with-homework\n"
    )
    return msg


def test_a_purchase_email_ends_in_the_welcome_email(world: World) -> None:
    world.send(purchase_email())
    world.send(purchase_email())  # delivered twice: handled once
    account = world.account()
    (task,) = account.store.find_tasks(open_only=True, block="check")
    assert task.assignee == "olga" and "Anna Petrova" in task.text
    account.attempt(lambda: account.answer(task, option="yes", fields={}, by="olga"))
    world.deliver()
    assert world.sink.wait_for(1, timeout=5)
    (welcome,) = world.mails_to("anna@example.com")
    assert welcome["Subject"] == "Welcome to Python from scratch"
    body = welcome.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "Login: anna@example.com" in text
    password = text.split("Password: ", 1)[1].split()[0]
    assert len(password) >= 8 and "*" not in password
    user_id = account.store.user_by_email("anna@example.com")
    assert user_id is not None
    user = account.store.get_object(user_id)
    assert user is not None and user.data["groups"] == ["with-homework"]
    assert user.data["password"] != password  # kept hashed only
    assert len(account.store.find_tasks(block="check")) == 1


def reply_email(
    to: str, *, sender: str = "Anna <anna@example.com>", message_id: str = "<r1@example.com>"
) -> EmailMessage:
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
    return msg


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
    assert mail["Subject"] == "Homework: Loops"
    (task,) = account.store.find_tasks(open_only=True, block="homework")
    reply_to = str(mail["Reply-To"])
    assert reply_to.startswith(f"reply+{task.id}.") and reply_to.endswith("@course.example")
    return task, reply_to


def test_a_reply_to_the_homework_email_becomes_a_comment(world: World) -> None:
    task, reply_to = homework(world)
    world.send(reply_email(reply_to))
    world.send(reply_email(reply_to))  # the same email again: one comment
    account = world.account()
    stored = account.store.get_task(task.id)
    assert stored is not None
    (comment,) = stored.comments
    assert (comment["by"], comment["text"]) == ("anna", "Here is my homework.")
    (meta,) = stored.attachments
    assert meta["name"] == "loops.pdf" and comment["attachments"] == [meta["id"]]
    assert account.attachment_content(task.id, meta["id"], by="olga") == PDF
    # the owner is notified by email
    world.deliver()
    assert world.sink.wait_for(2, timeout=5)
    (note,) = world.mails_to("olga@course.example")
    assert note["Subject"] == "New comment on task: Do homework: Loops"


def test_a_forged_reply_address_is_refused_and_changes_nothing(world: World) -> None:
    task, reply_to = homework(world)
    local, domain = reply_to.split("@")
    forged = f"{local[:-1]}{'A' if local[-1] != 'A' else 'B'}@{domain}"
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        world.send(reply_email(forged))
    assert refused.value.recipients[forged][0] == 550
    other = f"reply+{task.id.replace('.t', '.t9')}.{local.rsplit('.', 1)[1]}@{domain}"
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        world.send(reply_email(other))
    # a stranger writing to the right address is refused at DATA
    with pytest.raises(smtplib.SMTPDataError) as stranger:
        world.send(reply_email(reply_to, sender="Mallory <mallory@evil.example>"))
    assert stranger.value.smtp_code == 550
    stored = world.account().store.get_task(task.id)
    assert stored is not None and stored.comments == [] and stored.attachments == []
