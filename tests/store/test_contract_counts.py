"""The store contract for the outbox and mail-sink totals: ``count_deliveries`` and
``count_sink_mails`` agree with what ``deliveries`` / ``sink_mails`` list over all pages.

Runs on the memory store (the reference), SQLite and PostgreSQL (the fixtures of
``test_contract_messages.py``).
"""

from __future__ import annotations

from dataclasses import replace

from tests.store.test_contract_messages import (  # noqa: F401 - fixtures
    _mail,
    _message,
    _sent,
    recipe,
    store,
)

from flowlane.store.base import Store


def test_count_deliveries_counts_messages_by_status(store: Store) -> None:  # noqa: F811
    assert store.count_deliveries() == 0
    with store.transaction():
        store.add_message(_message("i1.m1", minutes=0))
        store.add_message(_message("i1.m2", "inapp", minutes=1))
        store.add_message(replace(_message("i1.m3", minutes=2), status="queued"))
        store.add_notification(_message("i1.m4", "inapp", minutes=3))  # not in the outbox
    _sent(store, "i1.m1")
    with store.transaction():
        assert store.mark_bounced("i1.m1", "550 mailbox unavailable")
    assert store.count_deliveries() == len(store.deliveries(limit=100)) == 3
    for status in ("sent", "queued", "bounced", "failed"):
        listed = store.deliveries(status=status, limit=100)
        assert store.count_deliveries(status) == len(listed), status
    assert (store.count_deliveries("bounced"), store.count_deliveries("failed")) == (1, 0)
    assert store.count_deliveries("queued") == 1


def test_count_sink_mails(store: Store) -> None:  # noqa: F811
    assert store.count_sink_mails() == 0
    with store.transaction():
        for i in range(3):
            assert store.add_sink_mail(_mail(f"i1.m{i}", i))
        assert not store.add_sink_mail(_mail("i1.m0", 9))  # kept once
    assert store.count_sink_mails() == len(store.sink_mails(limit=100)) == 3
