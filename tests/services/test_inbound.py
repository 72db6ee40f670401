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

from flowlane.core.errors import ValidationError
from flowlane.model.recipe import Recipe, load_recipe
from flowlane.model.validate import validate_recipe
from flowlane.runtime.mail import message_id
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
    reply_target,
    strip_quoted,
)
from flowlane.services.signing import account_secret
from flowlane.store.files import LocalFileStore
from flowlane.store.records import TaskRecord
from flowlane.store.sql.store import JobQueue, SqlStore

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
    headers: dict[str, str] | None = None,
) -> bytes:
    msg = EmailMessage()
    for name, value in (headers or {}).items():
        msg[name] = value
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
                "webinar-homework",
                "anna",
                {"topic": "Loops", "homework": "Write a loop"},
                by="olga",
            )
        )
    )
    (task,) = account.store.find_tasks(open_only=True, block="homework")
    (email,) = [m for m in account.store.messages() if m.block == "notify"]
    assert email.task_id == task.id and email.to == "anna@example.com"
    return task, reply_address(account_secret(account.store), task.id, "anna", "course.example")


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
    assert out.reply == "550 5.7.1 Not accepted"  # the reason goes to the log only
    assert "platinum" in out.result["reason"]
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


def test_a_reply_from_the_recipients_address_in_other_case_is_taken(account: Account) -> None:
    task, address = start_homework(account)
    raw = reply(address, sender="ANNA <Anna@Example.COM>")
    out = receive_email(account, raw, [address], account_secret(account.store))
    assert out.code == 250 and out.result["by"] == "anna"
    assert [c["by"] for c in comments(account, task.id)] == ["anna"]


FAILED_DKIM = {"Authentication-Results": "mx.course.example; dkim=fail header.d=example.com"}


@pytest.mark.parametrize(
    ("change", "sender", "headers", "why"),
    [
        ("forged", "Anna <anna@example.com>", {}, "reply address is not valid"),
        ("other task", "Anna <anna@example.com>", {}, "reply address is not valid"),
        ("other user", "Anna <anna@example.com>", {}, "reply address is not valid"),
        ("none", "Mallory <mallory@evil.example>", {}, "not the user anna"),
        # olga may comment on the task, but the address was made for anna: no impersonation
        ("none", "Olga <olga@course.example>", {}, "not the user anna"),
        ("none", "Anna <anna@example.com>", FAILED_DKIM, "dkim failed"),
        ("zoe's", "Zoe <zoe@example.com>", {}, "zoe may not comment"),
    ],
)
def test_a_refused_reply_is_550_and_changes_nothing(
    account: Account, change: str, sender: str, headers: dict[str, str], why: str
) -> None:
    task, address = start_homework(account)
    secret = account_secret(account.store)
    if change == "forged":
        address = address[:-20] + ("A" if address[-20] != "A" else "B") + address[-19:]
    elif change == "other task":
        signature = reply_address(secret, "i99.t1", "anna", "x").split("@")[0].split(".")[-1]
        address = f"reply+{task.id}.anna.{signature}@course.example"
    elif change == "other user":  # anna's signature with olga's id put in
        address = address.replace(".anna.", ".olga.")
    elif change == "zoe's":
        address = reply_address(secret, task.id, "zoe", "course.example")
    before = account.store.get_task(task.id)
    notified = len(account.store.notifications())
    raw = reply(
        address, sender=sender, files=[("answer.pdf", PDF, "application/pdf")], headers=headers
    )
    out = receive_email(account, raw, [address], secret)
    assert out.reply == "550 5.7.1 Not accepted"  # the same text whatever the reason
    assert why in out.result["reason"]
    assert account.store.get_task(task.id) == before
    assert len(account.store.notifications()) == notified


def test_a_reply_with_a_forbidden_file_is_refused(account: Account) -> None:
    task, address = start_homework(account)
    raw = reply(address, files=[("run.exe", b"MZ...", "application/octet-stream")])
    out = receive_email(account, raw, [address], account_secret(account.store))
    assert out.code == 550 and ".exe" in out.result["reason"]
    assert comments(account, task.id) == []


# ---- bounces ---------------------------------------------------------------------------------


def delivery_report(
    outbox_id: str, action: str = "failed", *, message_id: str, outbox_header: bool = False
) -> bytes:
    """A delivery status notification (RFC 3464) as a mail server writes one, quoting the
    original email's Message-ID ``message_id`` (and its ``X-Flowlane-Outbox`` header)."""
    quoted = f"X-Flowlane-Outbox: {outbox_id}\n" if outbox_header else ""
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
        f"Message-ID: {message_id}\n"
        f"{quoted}"
        "--B--\n"
    ).encode()


def homework_email(account: Account, *, sent: bool) -> str:
    """Start homework; the outbox id of its email, marked sent (as the worker does) if
    ``sent`` (the SQL stores queue emails; the memory store has them sent at once)."""
    start_homework(account)
    (email,) = [m for m in account.store.messages() if m.block == "notify"]
    if sent and isinstance(account.store, SqlStore):
        with account.store.transaction():
            JobQueue(account.store).mark_sent(email.id, T0)
    return email.id


def status_of(account: Account, outbox_id: str) -> str:
    (state,) = [d for d in account.store.deliveries() if d.id == outbox_id]
    return state.status


def test_a_delivery_report_marks_our_sent_email_bounced(account: Account) -> None:
    outbox_id = homework_email(account, sent=True)
    secret = account_secret(account.store)
    mid = message_id(outbox_id, secret=secret)
    delayed = delivery_report(outbox_id, "delayed", message_id=mid)
    assert receive_email(account, delayed, ["c@x"], secret).result["kind"] == "ignored"
    assert status_of(account, outbox_id) == "sent"
    report = delivery_report(outbox_id, message_id=mid, outbox_header=True)
    out = receive_email(account, report, ["course@course.example"], secret)
    assert out.code == 250
    assert out.result["kind"] == "bounce" and out.result["messages"] == [outbox_id]
    assert "no such user" in out.result["reason"]
    assert status_of(account, outbox_id) == "bounced"


@pytest.mark.parametrize(
    ("forgery", "outbox_header"),
    [
        ("unsigned", True),  # the header alone, with the old unsigned Message-ID
        ("unsigned", False),
        ("no message-id", True),
        ("other id's signature", True),
        ("other secret", False),
    ],
)
def test_a_forged_delivery_report_changes_nothing(
    account: Account, forgery: str, outbox_header: bool
) -> None:
    outbox_id = homework_email(account, sent=True)
    secret = account_secret(account.store)
    mid = {
        "unsigned": f"<{outbox_id}@flowlane>",
        "no message-id": "",
        "other id's signature": message_id("i99.m1", secret=secret),
        "other secret": message_id(outbox_id, secret=b"x" * 32),
    }[forgery]
    report = delivery_report(outbox_id, message_id=mid, outbox_header=outbox_header)
    out = receive_email(account, report, ["course@course.example"], secret)
    assert out.code == 250 and out.result["kind"] == "ignored"
    assert status_of(account, outbox_id) == "sent"


@pytest.mark.parametrize("account", ["sqlite", "postgresql"], indirect=True)
def test_a_delivery_report_for_a_queued_email_changes_nothing(account: Account) -> None:
    outbox_id = homework_email(account, sent=False)
    assert status_of(account, outbox_id) == "queued"
    secret = account_secret(account.store)
    report = delivery_report(outbox_id, message_id=message_id(outbox_id, secret=secret))
    out = receive_email(account, report, ["course@course.example"], secret)
    assert out.code == 250 and out.result == {
        "kind": "bounce",
        "messages": [],
        "reason": "smtp; 550 5.1.1 no such user",
    }
    assert status_of(account, outbox_id) == "queued"  # the worker still sends it


# ---- webhooks --------------------------------------------------------------------------------


def test_a_hook_with_an_idempotency_key_fires_once(account: Account) -> None:
    data = {"text": "hello"}
    first = receive_hook(account, "purchase", data, "req-1")
    second = receive_hook(account, "purchase", data, "req-1")
    assert first == second == {"started": []}
    # the same key on another hook is another call
    assert receive_hook(account, "refund", data, "req-1") == {"started": []}


# ---- the pieces ------------------------------------------------------------------------------


def test_reply_addresses_are_signed_per_task_and_user() -> None:
    address = reply_address(SECRET, "i7.t2", "user-3", "course.example")
    local = address.split("@")[0]
    assert local.startswith("reply+i7.t2.user-3.") and address.endswith("@course.example")
    assert len(local) <= 64  # RFC 5321
    assert reply_target(SECRET, address) == ("i7.t2", "user-3")
    assert reply_target(SECRET, f"<{address.replace('course', 'COURSE')}>") == ("i7.t2", "user-3")
    dotted = reply_address(SECRET, "i7.t2", "a.b", "x.example")
    assert reply_target(SECRET, dotted) == ("i7.t2", "a.b")
    assert reply_target(b"t" * 32, address) is None
    assert reply_target(SECRET, address.replace("i7.t2", "i7.t3")) is None
    assert reply_target(SECRET, address.replace("user-3", "user-4")) is None
    assert reply_target(SECRET, "anna@example.com") is None
    assert reply_target(SECRET, "reply+@x") is None
    with pytest.raises(ValidationError, match="cannot be part of a reply address"):
        reply_address(SECRET, "i7.t2", "anna smith", "x.example")
    with pytest.raises(ValidationError, match="longer than 64"):
        reply_address(SECRET, "i7.t2", "u" * 40, "x.example")
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
