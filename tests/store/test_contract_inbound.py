"""The store contract for inbound bookkeeping: ``claim_inbound`` / ``finish_inbound`` (each
inbound message handled once) and the outbox's ``task_id`` (the task a reply comments on).

Runs on :class:`~flowlane.store.memory.MemoryStore` (the reference) and on SQLite and
PostgreSQL, like ``test_contract.py``; looks only at what the protocol returns.
"""

from __future__ import annotations

import pytest
from tests.store import test_contract as contract
from tests.store.test_contract import AT, Boom

from flowlane.store.base import Store
from flowlane.store.records import MessageRecord

store = contract.store
recipe = contract.recipe


def test_an_inbound_message_is_claimed_once_and_answers_its_result(store: Store) -> None:
    with store.transaction():
        assert store.claim_inbound("email:<a@x>", AT) is None
        store.finish_inbound("email:<a@x>", {"kind": "event", "started": ["i1"]})
    with store.transaction():
        assert store.claim_inbound("email:<a@x>", AT) == {"kind": "event", "started": ["i1"]}
        assert store.claim_inbound("webhook:purchase/1", AT) is None
    with store.transaction():
        # claimed, never finished: a duplicate with an empty result
        assert store.claim_inbound("webhook:purchase/1", AT) == {}


def test_a_rolled_back_claim_is_forgotten(store: Store) -> None:
    with pytest.raises(Boom), store.transaction():
        assert store.claim_inbound("email:<b@x>", AT) is None
        store.finish_inbound("email:<b@x>", {"kind": "reply"})
        raise Boom
    with store.transaction():
        assert store.claim_inbound("email:<b@x>", AT) is None


def test_the_outbox_keeps_the_task_a_reply_goes_to(store: Store) -> None:
    def message(mid: str, task_id: str | None) -> MessageRecord:
        return MessageRecord(
            id=mid,
            instance_id="i1",
            process="p",
            block="notify",
            channel="email",
            to="anna@example.com",
            recipient="anna",
            subject="s",
            body="b",
            created_at=AT,
            task_id=task_id,
        )

    with store.transaction():
        store.add_message(message("i1.m1", "i1.t1"))
        store.add_message(message("i1.m2", None))
    assert [(m.id, m.task_id) for m in store.messages()] == [
        ("i1.m1", "i1.t1"),
        ("i1.m2", None),
    ]
