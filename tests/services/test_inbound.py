"""Inbound email and webhooks as services (issue 6, part 4), on every store: an email starts
S1.1's welcome, a reply to a task's email lands as a comment with its attachments, a
delivery report marks our email bounced; each message is handled once; every refusal
changes nothing. Also the pieces: reply addresses, quote stripping, body fields and the
``reply_to_task`` parameter of message blocks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from flowlane.model.recipe import Recipe, load_recipe
from flowlane.model.validate import validate_recipe
from flowlane.runtime.simulate import Database, build_account
from flowlane.services.account import Account
from flowlane.services.inbound import (
    body_fields,
    email_event_data,
    hook_token,
    hook_token_ok,
    mail_domain,
    receive_email,
    receive_hook,
    reply_address,
    strip_quoted,
    task_of_reply,
)
from flowlane.services.signing import account_secret
from flowlane.store.files import LocalFileStore
from flowlane.store.records import TaskRecord

COURSE = Path(__file__).resolve().parents[2] / "recipes" / "course"
TZ = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)
SECRET = b"s" * 32
PDF = b"%PDF-1.4 my homework"


@pytest.fixture(scope="module")
def recipe() -> Recipe:
    return load_recipe(COURSE)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def account(request: pytest.FixtureRequest, recipe: Recipe, tmp_path: Path) -> Iterator[Account]:
    """The course recipe with olga (owner), anna and zoe (clients)."""
    db = None
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'inbound.db'}")
    elif request.param == "postgresql":
        db = Database(request.getfixturevalue("pg_database"))
    acc = build_account(recipe, T0, TZ, None, db)
    acc._files = LocalFileStore(tmp_path / "data")
    try:

        def users() -> None:
            acc.create_object(
                "user",
                {"name": "Olga", "email": "olga@course.example", "role": "owner"},
                object_id="olga",
            )
            acc.create_object(
                "user", {"name": "Anna", "email": "anna@example.com"}, object_id="anna"
            )
            acc.create_object("user", {"name": "Zoe", "email": "zoe@example.com"}, object_id="zoe")

        acc.attempt(users)
        yield acc
    finally:
        acc.store.close()


def purchase(message_id: str = "<order-1042@shop.example>") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Shop <payments@shop.example>"
    msg["To"] = "orders@course.example"
    msg["Subject"] = "New order 1042"
    msg["Message-ID"] = message_id
    msg.set_content(
        "A new order.\n\nName: Anna Petrova\nEmail: anna@example.com\nTicket: watch-only\n"
    )
    return msg.as_bytes()


def reply(
    to: str,
    *,
    sender: str = "Anna <anna@example.com>",
    text: str = "My answer is 42.",
    files: list[tuple[str, bytes, str]] | None = None,
    message_id: str = "<reply-1@example.com>",
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "Re: Homework: Loops"
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = "<i1.m3@flowlane>"
    msg.set_content(
        f"{text}\n\nOn Mon, 2 Mar 2026 at 10:00, Course <course@course.example> wrote:\n"
        "> Hello Anna,\n> here is the homework\n"
    )
    for name, content, ctype in files or []:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def start_homework(account: Account) -> tuple[TaskRecord, str]:
    """Start homework on anna; the task and the reply address its email carries."""
    out: list[str] = []
    account.attempt(
        lambda: out.append(
            account.start(
                "homework", "anna", {"topic": "Loops", "homework": "Write a loop"}, by="olga"
            )
        )
    )
    (task,) = account.store.find_tasks(open_only=True, block="homework")
    (email,) = [m for m in account.store.messages() if m.block == "notify"]
    assert email.task_id == task.id and email.to == "anna@example.com"
    return task, reply_address(account_secret(account.store), task.id, "course.example")


def comments(account: Account, task_id: str) -> list[dict[str, Any]]:
    found = account.store.get_task(task_id)
    assert found is not None
    return found.comments


# ---- an email starts a process (S1.1) -------------------------------------------------------


def test_a_purchase_email_starts_welcome_once(account: Account) -> None:
    secret = account_secret(account.store)
    first = receive_email(account, purchase(), ["orders@course.example"], secret)
    assert first.code == 250 and first.result["kind"] == "event"
    assert len(first.result["started"]) == 1
    (task,) = account.store.find_tasks(open_only=True, block="check")
    assert task.assignee == "olga"
    app = account.store.get_object(str(task.object_id))
    assert app is not None
    assert (app.data["name"], app.data["email"], app.data["ticket"]) == (
        "Anna Petrova",
        "anna@example.com",
        "watch-only",
    )
    again = receive_email(account, purchase(), ["orders@course.example"], secret)
    assert again.code == 250 and again.result["duplicate"] is True
    assert again.result["started"] == first.result["started"]
    assert len(account.store.find_tasks(block="check")) == 1


def test_a_purchase_email_with_a_bad_ticket_is_refused_and_changes_nothing(
    account: Account,
) -> None:
    raw = purchase().replace(b"Ticket: watch-only", b"Ticket: platinum")
    out = receive_email(account, raw, ["orders@course.example"], account_secret(account.store))
    assert out.code == 550 and "platinum" in out.text
    assert account.store.find_tasks(block="check") == []
    # not remembered as handled: fixed and sent again with the same Message-ID, it is taken
    fixed = receive_email(account, purchase(), ["x@course.example"], account_secret(account.store))
    assert fixed.code == 250 and len(fixed.result["started"]) == 1


def test_email_event_data_takes_the_sender_and_the_fields_of_the_text() -> None:
    msg = EmailMessage()
    msg["From"] = "Shop Robot <robot@shop.example>"
    msg["Subject"] = "Order"
    msg.set_content("Name: Anna\nTicket type: VIP\nsee https://shop.example/o/1\n")
    data = email_event_data(msg)
    assert data["from"] == "robot@shop.example"
    assert data["email"] == "robot@shop.example"  # no Email line: the sender
    assert data["name"] == "Anna"  # the text's field wins over the sender's name
    assert data["ticket_type"] == "VIP"
    assert data["subject"] == "Order"
    assert "https" not in data


# ---- replies to task emails (S1.2 step 4) ----------------------------------------------------


def test_a_reply_lands_as_a_comment_with_attachments_and_the_owner_is_notified(
    account: Account,
) -> None:
    task, address = start_homework(account)
    notified = len(account.store.notifications())
    raw = reply(address, files=[("answer.pdf", PDF, "application/pdf")])
    out = receive_email(account, raw, [address], account_secret(account.store))
    assert out.code == 250, out.text
    assert out.result == {"kind": "reply", "task": task.id, "by": "anna", "files": 1}
    (comment,) = comments(account, task.id)
    assert comment["by"] == "anna" and comment["text"] == "My answer is 42."
    stored = account.store.get_task(task.id)
    assert stored is not None
    (meta,) = stored.attachments
    assert meta["name"] == "answer.pdf" and comment["attachments"] == [meta["id"]]
    assert account.attachment_content(task.id, meta["id"], by="olga") == PDF
    new = account.store.notifications()[notified:]
    assert [(n.recipient, n.subject) for n in new] == [
        ("olga", "New comment on task: Do homework: Loops")
    ]


def test_the_same_reply_twice_is_one_comment(account: Account) -> None:
    task, address = start_homework(account)
    secret = account_secret(account.store)
    assert receive_email(account, reply(address), [address], secret).code == 250
    second = receive_email(account, reply(address), [address], secret)
    assert second.code == 250 and second.result["duplicate"] is True
    assert len(comments(account, task.id)) == 1


@pytest.mark.parametrize(
    ("change", "sender", "why"),
    [
        ("forged", "Anna <anna@example.com>", "reply address is not valid"),
        ("other task", "Anna <anna@example.com>", "reply address is not valid"),
        ("none", "Mallory <mallory@evil.example>", "not a user"),
        ("none", "Zoe <zoe@example.com>", "zoe may not comment"),
    ],
)
def test_a_refused_reply_is_550_and_changes_nothing(
    account: Account, change: str, sender: str, why: str
) -> None:
    task, address = start_homework(account)
    if change == "forged":
        address = address[:-20] + ("A" if address[-20] != "A" else "B") + address[-19:]
    elif change == "other task":
        secret = account_secret(account.store)
        signature = reply_address(secret, "i99.t1", "course.example").split(".", 2)[2]
        address = f"reply+{task.id}.{signature}"
    before = account.store.get_task(task.id)
    notified = len(account.store.notifications())
    raw = reply(address, sender=sender, files=[("answer.pdf", PDF, "application/pdf")])
    out = receive_email(account, raw, [address], account_secret(account.store))
    assert out.code == 550 and why in out.text
    assert account.store.get_task(task.id) == before
    assert len(account.store.notifications()) == notified


def test_a_reply_with_a_forbidden_file_is_refused(account: Account) -> None:
    task, address = start_homework(account)
    raw = reply(address, files=[("run.exe", b"MZ...", "application/octet-stream")])
    out = receive_email(account, raw, [address], account_secret(account.store))
    assert out.code == 550 and ".exe" in out.text
    assert comments(account, task.id) == []


# ---- bounces ---------------------------------------------------------------------------------


def delivery_report(outbox_id: str, action: str = "failed") -> bytes:
    """A delivery status notification (RFC 3464) as a mail server writes one."""
    return (
        "From: MAILER-DAEMON@mx.example\n"
        "To: course@course.example\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        f"Message-ID: <dsn-{outbox_id}-{action}@mx.example>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n'
        "\n"
        "--B\n"
        "Content-Type: text/plain\n"
        "\n"
        "Your message could not be delivered.\n"
        "--B\n"
        "Content-Type: message/delivery-status\n"
        "\n"
        "Reporting-MTA: dns; mx.example\n"
        "\n"
        "Final-Recipient: rfc822; anna@example.com\n"
        f"Action: {action}\n"
        "Status: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\n"
        "--B\n"
        "Content-Type: text/rfc822-headers\n"
        "\n"
        "From: course@course.example\n"
        "To: anna@example.com\n"
        "Subject: Homework: Loops\n"
        f"Message-ID: <{outbox_id}@flowlane>\n"
        "--B--\n"
    ).encode()


def test_a_delivery_report_marks_our_email_bounced(account: Account) -> None:
    start_homework(account)
    (email,) = [m for m in account.store.messages() if m.block == "notify"]
    secret = account_secret(account.store)
    delayed = receive_email(account, delivery_report(email.id, "delayed"), ["c@x"], secret)
    assert delayed.result["kind"] == "ignored"
    out = receive_email(account, delivery_report(email.id), ["course@course.example"], secret)
    assert out.code == 250
    assert out.result["kind"] == "bounce" and out.result["messages"] == [email.id]
    assert "no such user" in out.result["reason"]
    (state,) = [d for d in account.store.deliveries() if d.id == email.id]
    assert state.status == "bounced"


# ---- webhooks --------------------------------------------------------------------------------


def test_a_hook_with_an_idempotency_key_fires_once(account: Account) -> None:
    data = {"text": "hello"}
    first = receive_hook(account, "purchase", data, "req-1")
    second = receive_hook(account, "purchase", data, "req-1")
    assert first == second == {"started": []}
    # the same key on another hook is another call
    assert receive_hook(account, "refund", data, "req-1") == {"started": []}


# ---- the pieces ------------------------------------------------------------------------------


def test_reply_addresses_are_signed_per_task() -> None:
    address = reply_address(SECRET, "i7.t2", "course.example")
    local = address.split("@")[0]
    assert local.startswith("reply+i7.t2.") and address.endswith("@course.example")
    assert task_of_reply(SECRET, address) == "i7.t2"
    assert task_of_reply(SECRET, f"<{address.replace('course', 'COURSE')}>") == "i7.t2"
    assert task_of_reply(b"t" * 32, address) is None
    assert task_of_reply(SECRET, address.replace("i7.t2", "i7.t3")) is None
    assert task_of_reply(SECRET, "anna@example.com") is None
    assert task_of_reply(SECRET, "reply+@x") is None
    assert hook_token_ok(SECRET, "purchase", hook_token(SECRET, "purchase"))
    assert not hook_token_ok(SECRET, "refund", hook_token(SECRET, "purchase"))
    assert not hook_token_ok(SECRET, "purchase", "")


def test_the_mail_domain_is_configured_or_the_senders() -> None:
    assert mail_domain("Course <course@course.example>", {}) == "course.example"
    assert mail_domain("course@course.example", {"FLOWLANE_MAIL_DOMAIN": "r.example"}) == (
        "r.example"
    )
    assert mail_domain("flowlane", {}) == "localhost"


@pytest.mark.parametrize(
    ("text", "own"),
    [
        ("Done!\n\nOn Mon, 2 Mar 2026, Course <c@x> wrote:\n> old\n", "Done!"),
        ("Done!\nOn Mon, 2 Mar 2026 at 10:00, Course <c@x>\nwrote:\n> old", "Done!"),
        ("Done!\n-----Original Message-----\nFrom: c@x\n", "Done!"),
        ("Line 1\n> quoted\nLine 2\n-- \nAnna", "Line 1\nLine 2"),
        ("Only text", "Only text"),
    ],
)
def test_strip_quoted_keeps_the_replys_own_text(text: str, own: str) -> None:
    assert strip_quoted(text) == own


def test_body_fields_read_key_value_lines() -> None:
    assert body_fields("Name: Anna\nE-mail:  a@x \nName: Other\nno field here\nhttp://x") == {
        "name": "Anna",
        "e_mail": "a@x",
    }


REPLY_PROCESS = """
key: p
name: p
object: user
blocks:
  start: {type: start, next: ask}
  ask: {type: question, title: Q, options: {ok: tell}}
  tell: {type: message, channel: %s, to: client, subject: s, body: b, reply_to_task: %s}
"""


@pytest.mark.parametrize(
    ("channel", "target", "error"),
    [
        ("email", "nope", "reply_to_task: block 'nope' does not exist"),
        ("email", "start", "reply_to_task: block 'start' is a start block, not a task"),
        ("inapp", "ask", "reply_to_task: only emails get replies, not channel 'inapp'"),
    ],
)
def test_reply_to_task_is_checked(tmp_path: Path, channel: str, target: str, error: str) -> None:
    root = tmp_path / "r"
    (root / "processes").mkdir(parents=True)
    (root / "processes" / "p.yaml").write_text(REPLY_PROCESS % (channel, target))
    loaded = load_recipe(root)
    errors = [str(d) for d in loaded.problems + validate_recipe(loaded) if d.severity == "error"]
    assert any(error in e for e in errors), errors


def test_reply_to_task_without_an_open_task_is_an_incident(tmp_path: Path, recipe: Recipe) -> None:
    root = tmp_path / "r"
    (root / "processes").mkdir(parents=True)
    (root / "processes" / "p.yaml").write_text(REPLY_PROCESS % ("email", "ask"))
    loaded = load_recipe(root)
    assert loaded.problems == []
    acc = build_account(loaded, T0, TZ, None)
    acc.attempt(
        lambda: acc.create_object("user", {"name": "A", "email": "a@x.example"}, object_id="a")
    )
    acc.attempt(lambda: acc.start("p", "a"))
    (task,) = acc.store.find_tasks(open_only=True)
    acc.attempt(lambda: acc.answer(task, option="ok", fields={}, by=None))
    (incident,) = acc.store.incidents()
    assert "reply_to_task: block 'ask' has no open task" in incident.message
    assert acc.store.messages() == []
