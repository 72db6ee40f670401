"""The store contract for the inbox's count and the set-based reassignment (issue 5, items 1
and 5), on the memory store, SQLite and PostgreSQL; the builders and the ``store`` fixture are
those of ``test_contract.py``."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from tests.store.test_contract import AT, _ids, _put_instances, _task, recipe, store

from flowlane.store.base import Store
from flowlane.store.records import TaskQuery
from flowlane.store.sql.store import SqlStore

__all__ = ["recipe", "store"]  # the fixtures, imported

ENTRY = {"at": AT + timedelta(hours=1), "by": "boss", "what": "reassigned", "to": "user-9"}


def _bulk_tasks(store: Store) -> None:
    _put_instances(store, "i1", "i2")
    for tid, kw in [
        ("a", {}),
        ("b", {"assignee": "user-2"}),
        ("c", {"assignee": None}),
        ("d", {"closed": True, "status": "answered"}),
        ("e", {"created_at": AT + timedelta(days=1)}),
        ("f", {"object_id": "order-2"}),
        ("g", {"process": "reach-by-phone", "instance_id": "i2"}),
        ("h", {"assignee": "user-9"}),
        ("i", {"inbox": False}),
    ]:
        store.put_task(_task(tid, history=[{"at": AT, "by": None, "what": "opened"}], **kw))


def _assignees(store: Store) -> dict[str, Any]:
    return {t.id: t.assignee for t in store.find_tasks()}


def test_inbox_count_is_the_whole_inbox(store: Store) -> None:
    _bulk_tasks(store)
    now = AT + timedelta(hours=2)
    # user-1: a, e, f, g (open, in the inbox); c is unassigned in new-order
    assert store.inbox_count("user-1", ()) == 4
    assert store.inbox_count("user-1", ["new-order"]) == 5
    assert store.inbox_count("user-1", ["new-order", "reach-by-phone"]) == 5
    assert store.inbox_count("user-1", ["new-order"]) == len(
        store.inbox("user-1", ["new-order"], now, limit=500)
    )
    assert store.inbox_count("user-2", ()) == 1
    assert store.inbox_count("nobody", ()) == 0
    with store.transaction():
        task = store.get_task("a")
        assert task is not None
        task.closed, task.status = True, "answered"
        store.put_task(task)
        assert store.inbox_count("user-1", ()) == 3  # sees the transaction's own change


def test_reassign_filters_and_history(store: Store) -> None:
    _bulk_tasks(store)
    before = {t.id: list(t.history) for t in store.find_tasks()}
    # user-1's open tasks of new-order created on 1 May, of order-1
    query = TaskQuery(
        process="new-order",
        assignee="user-1",
        open_only=True,
        object_ids=("order-1",),
        created_from=AT,
        created_to=AT + timedelta(hours=1),
    )
    with store.transaction():
        assert store.reassign_tasks(query, "user-9", ENTRY) == 2  # a, i
    assignees = _assignees(store)
    assert assignees == {
        "a": "user-9",
        "b": "user-2",
        "c": None,
        "d": "user-1",
        "e": "user-1",
        "f": "user-1",
        "g": "user-1",
        "h": "user-9",
        "i": "user-9",
    }
    for task in store.find_tasks():
        if task.id in ("a", "i"):
            assert task.history == [*before[task.id], ENTRY]
            assert task.history[-1]["at"] == AT + timedelta(hours=1)
        else:
            assert task.history == before[task.id]
    # tasks that `to` holds already are not changed again
    with store.transaction():
        assert store.reassign_tasks(TaskQuery(process="new-order"), "user-9", ENTRY) == 5
    assert store.reassign_tasks(TaskQuery(process="new-order"), "user-9", ENTRY) == 0
    h = store.get_task("h")
    assert h is not None and len(h.history) == 1
    # to nobody; unassigned ones (none left) and closed ones by status
    reset = {**ENTRY, "to": None}
    assert store.reassign_tasks(TaskQuery(process="new-order", status="answered"), None, reset) == 1
    d = store.get_task("d")
    assert d is not None and d.assignee is None and d.history[-1] == reset
    assert store.reassign_tasks(TaskQuery(object_ids=()), "user-2", ENTRY) == 0


def test_reassign_updates_what_the_transaction_holds(store: Store) -> None:
    _bulk_tasks(store)
    with store.transaction():
        a = store.get_task("a")
        assert a is not None
        a.status = "checked"  # buffered, not yet written
        store.put_task(a)
        query = TaskQuery(process="new-order", assignee="user-1", status="checked")
        assert store.reassign_tasks(query, "user-2", ENTRY) == 1
        again = store.get_task("a")
        assert again is not None and again.assignee == "user-2" and again.history[-1] == ENTRY
        assert _ids(store.find_tasks(open_only=True, object_id="order-2")) == ["f"]
        # a later write of the task keeps the change
        again.priority = "high"
        store.put_task(again)
    final = store.get_task("a")
    assert final is not None
    assert (final.assignee, final.status, final.priority) == ("user-2", "checked", "high")
    assert [h["what"] for h in final.history] == ["opened", "reassigned"]


def test_failed_transaction_undoes_the_reassignment(store: Store) -> None:
    _bulk_tasks(store)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.transaction():
        assert store.reassign_tasks(TaskQuery(process="new-order"), None, ENTRY) == 7
        raise Boom
    assert _assignees(store)["a"] == "user-1"
    a = store.get_task("a")
    assert a is not None and len(a.history) == 1


def test_concurrent_change_is_rechecked(store: Store) -> None:
    """A task another transaction takes away meanwhile (it no longer matches) stays as it is:
    the UPDATE re-checks its filters on the row it changes (PostgreSQL; SQLite and memory
    have one writer at a time, so the change simply comes first or last)."""
    if not isinstance(store, SqlStore) or not store.pg:
        _bulk_tasks(store)
        b = store.get_task("b")
        assert b is not None
        b.assignee = "user-3"
        store.put_task(b)
        assert store.reassign_tasks(TaskQuery(assignee="user-2"), "user-9", ENTRY) == 0
        return
    _bulk_tasks(store)
    holding = threading.Event()
    release = threading.Event()
    result: list[int] = []

    def other() -> None:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE tasks SET assignee = 'user-3' WHERE id = 'b'")
            holding.set()
            release.wait(10)

    writer = threading.Thread(target=other)
    writer.start()
    assert holding.wait(10)

    def bulk() -> None:
        with store.transaction():
            result.append(store.reassign_tasks(TaskQuery(assignee="user-2"), "user-9", ENTRY))

    reassigner = threading.Thread(target=bulk)
    reassigner.start()
    reassigner.join(0.3)  # it waits on the row the other transaction holds
    assert reassigner.is_alive()
    release.set()
    writer.join(10)
    reassigner.join(10)
    assert result == [0]
    b = store.get_task("b")
    assert b is not None and b.assignee == "user-3" and len(b.history) == 1
