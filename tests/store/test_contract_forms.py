"""The store contract for public forms and signed links: ``add_form_submission``,
``count_form_submissions``, ``last_form_submission``, ``lock_key``, ``use_link``,
``link_used``.

Runs on :class:`~flowlane.store.memory.MemoryStore` (the reference) and on SQLite and
PostgreSQL, like ``test_contract.py``; looks only at what the protocol returns.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.store import test_contract as contract
from tests.store.test_contract import AT, Boom

from flowlane.store.base import Store

store = contract.store
recipe = contract.recipe


def test_form_submissions_are_counted_per_form_address_and_time(store: Store) -> None:
    with store.transaction():
        store.add_form_submission("signup", "h1", AT, "user-1")
        store.add_form_submission("signup", "h1", AT + timedelta(minutes=5), None)
        store.add_form_submission("signup", "h2", AT + timedelta(minutes=5), "user-2")
        store.add_form_submission("other", "h1", AT + timedelta(minutes=5), None)
    assert store.count_form_submissions("signup", "h1", AT) == 2
    assert store.count_form_submissions("signup", "h1", AT + timedelta(minutes=1)) == 1
    assert store.count_form_submissions("signup", "h1", AT + timedelta(minutes=6)) == 0
    assert store.count_form_submissions("signup", "h2", AT) == 1
    assert store.count_form_submissions("other", "h1", AT) == 1
    assert store.count_form_submissions("nothing", "h1", AT) == 0


def test_refused_submissions_count_but_change_no_object(store: Store) -> None:
    with store.transaction():
        store.add_form_submission("signup", "h1", AT, None, accepted=False)
        store.add_form_submission("review", "h1", AT, "r1")
        store.add_form_submission("review", "h1", AT + timedelta(hours=1), "r1", accepted=False)
        store.add_form_submission("review", "h2", AT + timedelta(minutes=5), "r1")
    assert store.count_form_submissions("signup", "h1", AT) == 1
    assert store.count_form_submissions("review", "h1", AT) == 2
    last = store.last_form_submission("r1")
    assert last is not None and last == AT + timedelta(minutes=5)  # the refused one: no
    assert store.last_form_submission("r2") is None


def test_a_key_lock_lasts_for_the_transaction(store: Store) -> None:
    with store.transaction():
        store.lock_key("form:signup:h1")
        store.lock_key("form:signup:h1")  # again in the same transaction: no wait
        store.add_form_submission("signup", "h1", AT, None)
    with store.transaction():  # released at commit
        store.lock_key("form:signup:h1")
    assert store.count_form_submissions("signup", "h1", AT) == 1


def test_a_rolled_back_submission_is_not_counted(store: Store) -> None:
    with pytest.raises(Boom), store.transaction():
        store.add_form_submission("signup", "h1", AT, None)
        assert store.count_form_submissions("signup", "h1", AT) == 1  # seen inside
        raise Boom
    assert store.count_form_submissions("signup", "h1", AT) == 0


def test_a_link_is_used_once(store: Store) -> None:
    assert store.link_used("t1") is False
    with store.transaction():
        assert store.use_link("t1", "review-1", AT) is True
        assert store.link_used("t1") is True
    with store.transaction():
        assert store.use_link("t1", "review-1", AT + timedelta(hours=1)) is False
        assert store.use_link("t2", "review-1", AT) is True
    assert store.link_used("t1") is True
    assert store.link_used("t2") is True
    assert store.link_used("t3") is False


def test_a_rolled_back_use_leaves_the_link_unused(store: Store) -> None:
    with pytest.raises(Boom), store.transaction():
        assert store.use_link("t1", "review-1", AT) is True
        raise Boom
    assert store.link_used("t1") is False
    with store.transaction():
        assert store.use_link("t1", "review-1", AT) is True
