"""The store contract for messages' delivery state and the mail sink: ``deliveries``,
``mark_bounced``, ``add_sink_mail``, ``sink_mails``, ``sink_mail``.

Runs on :class:`~flowlane.store.memory.MemoryStore` (the reference) and on SQLite and
PostgreSQL, like ``test_contract.py``; looks only at what the protocol returns.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from tests.store import test_contract as contract
from tests.store.test_contract import AT, Boom

from flowlane.store.base import Store
from flowlane.store.records import MessageRecord, SinkMail
from flowlane.store.sql import JobQueue, SqlStore

store = contract.store
recipe = contract.recipe


def _sent(store: Store, *ids: str) -> None:
    """Mark emails sent as the worker does (the memory store has them sent already)."""
    if isinstance(store, SqlStore):
        with store.transaction():
            for outbox_id in ids:
                JobQueue(store).mark_sent(outbox_id, AT)


def _message(message_id: str, channel: str = "email", minutes: int = 0) -> MessageRecord:
    return MessageRecord(
        id=message_id,
        instance_id="i1",
        process="new-order",
        block="tell",
        channel=channel,
        to="anna@example.com" if channel == "email" else "anna",
        recipient="anna",
        subject=f"subject {message_id}",
        body=f"body {message_id}",
        created_at=AT + timedelta(minutes=minutes),
    )


def _mail(outbox_id: str, minutes: int = 0, **kw: Any) -> SinkMail:
    values: dict[str, Any] = {
        "outbox_id": outbox_id,
        "message_id": f"<{outbox_id}@flowlane>",
        "to": "anna@example.com",
        "subject": f"Заказ {outbox_id}",
        "raw": f"Subject: {outbox_id}\n\nПривет\n",
        "stored_at": AT + timedelta(minutes=minutes),
    }
    values.update(kw)
    return SinkMail(**values)


# ---- deliveries and bounces -------------------------------------------------------------------


def test_deliveries_list_messages_newest_first_and_page(store: Store) -> None:
    with store.transaction():
        store.add_message(_message("i1.m1", minutes=0))
        store.add_message(_message("i1.m2", "inapp", minutes=1))
        store.add_message(_message("i1.m3", minutes=2))
        store.add_notification(_message("i1.m4", "inapp", minutes=3))
    found = store.deliveries()
    assert [d.id for d in found] == ["i1.m3", "i1.m2", "i1.m1"]  # no notifications
    first = found[-1]
    assert (first.channel, first.to, first.recipient, first.subject) == (
        "email",
        "anna@example.com",
        "anna",
        "subject i1.m1",
    )
    assert (first.process, first.block, first.instance_id) == ("new-order", "tell", "i1")
    assert first.created_at == AT and first.sent_at is None and first.last_error is None
    assert [d.id for d in store.deliveries(offset=1, limit=1)] == ["i1.m2"]


def test_mark_bounced_records_the_reason_on_the_email(store: Store) -> None:
    with store.transaction():
        store.add_message(_message("i1.m1"))
        store.add_message(_message("i1.m2", "inapp"))
    _sent(store, "i1.m1")
    with store.transaction():
        assert store.mark_bounced("i1.m1", "550 5.1.1 mailbox unavailable")
        assert not store.mark_bounced("i1.m2", "an in-app message cannot bounce")
        assert not store.mark_bounced("i9.m9", "no such message")
    (bounced,) = store.deliveries(status="bounced")
    assert (bounced.id, bounced.last_error) == ("i1.m1", "550 5.1.1 mailbox unavailable")
    assert {d.id: d.status for d in store.deliveries()}["i1.m2"] == "sent"
    with store.transaction():  # a second bounce for the same email: the latest reason
        assert store.mark_bounced("i1.m1", "554 spam")
    assert [d.last_error for d in store.deliveries(status="bounced")] == ["554 spam"]


def test_a_queued_email_cannot_bounce(store: Store) -> None:
    with store.transaction():
        store.add_message(replace(_message("i1.m1"), status="queued"))
    with store.transaction():
        assert not store.mark_bounced("i1.m1", "550 a forged report")
    assert [(d.status, d.last_error) for d in store.deliveries()] == [("queued", None)]


def test_a_bounce_rolled_back_changes_nothing(store: Store) -> None:
    with store.transaction():
        store.add_message(_message("i1.m1"))
    _sent(store, "i1.m1")
    with pytest.raises(Boom), store.transaction():
        assert store.mark_bounced("i1.m1", "550")
        raise Boom
    assert store.deliveries(status="bounced") == []


# ---- the mail sink -----------------------------------------------------------------------------


def test_sink_mails_are_kept_once_per_outbox_id(store: Store) -> None:
    with store.transaction():
        assert store.add_sink_mail(_mail("i1.m1", 0))
        assert store.add_sink_mail(_mail("i1.m2", 1))
    with store.transaction():
        assert not store.add_sink_mail(_mail("i1.m1", 5, subject="again"))
    newest, oldest = store.sink_mails()
    assert (newest.outbox_id, oldest.outbox_id) == ("i1.m2", "i1.m1")
    assert newest.id != oldest.id and newest.id > 0 and oldest.id > 0
    assert [m.outbox_id for m in store.sink_mails(offset=1, limit=5)] == ["i1.m1"]
    got = store.sink_mail(oldest.id)
    assert got is not None
    assert (got.subject, got.raw, got.to) == (
        "Заказ i1.m1",
        "Subject: i1.m1\n\nПривет\n",
        "anna@example.com",
    )
    assert (got.message_id, got.stored_at) == ("<i1.m1@flowlane>", AT)
    assert store.sink_mail(oldest.id + newest.id + 100) is None


def test_a_sink_mail_rolled_back_is_not_kept(store: Store) -> None:
    with pytest.raises(Boom), store.transaction():
        assert store.add_sink_mail(_mail("i1.m1"))
        raise Boom
    assert store.sink_mails() == []
    with store.transaction():
        assert store.add_sink_mail(_mail("i1.m1"))
    assert [m.outbox_id for m in store.sink_mails()] == ["i1.m1"]
