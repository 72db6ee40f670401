"""What only the SQL store has: the batch prefetch, its caches, row locks and the bulk writer."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from flowlane.engine.context import ObjectRecord
from flowlane.engine.state import InstanceState
from flowlane.model.recipe import load_recipe
from flowlane.store.records import TimerRecord
from flowlane.store.sql import SqlStore, open_store

TZ = ZoneInfo("Europe/Moscow")
AT = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "order-processing"


def _open(url: str) -> SqlStore:
    schema = load_recipe(RECIPE).schema
    assert schema is not None
    return open_store(url, copy.deepcopy(schema), tz=TZ, reset=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 's.db'}"
    else:
        yield request.getfixturevalue("pg_database")


@pytest.fixture
def store(url: str) -> Iterator[SqlStore]:
    opened = _open(url)
    try:
        with opened.transaction():
            for i in range(3):
                opened.put_object(ObjectRecord(f"u{i}", "user", {"name": f"U{i}"}), AT)
            opened.put_instance(InstanceState(id="i1", process="p", version=1, object_id="u0"))
            opened.put_instance(InstanceState(id="i2", process="p", version=1, object_id="u1"))
            opened.subscribe("i1", ("u0",))
        yield opened
    finally:
        opened.close()


def test_prefetch_reads_what_single_reads_read(store: SqlStore) -> None:
    with store.transaction():
        plain = {oid: (store.get_object(oid), store.waiting_on(oid)) for oid in ("u0", "u1")}
    with store.transaction():
        store.prefetch(object_ids=["u0", "u1", "nobody"], instance_ids=["i1", "i2", "i9"])
        fetched = {oid: (store.get_object(oid), store.waiting_on(oid)) for oid in ("u0", "u1")}
        assert store.get_object("nobody") is None
        assert store.get_instance("i9") is None
        state = store.get_instance("i2")
        assert state is not None and state.object_id == "u1"
    assert fetched == plain
    assert plain["u0"][1] == ["i1"] and plain["u1"][1] == []


def test_subscriptions_made_after_a_prefetch_are_seen(store: SqlStore) -> None:
    with store.transaction():
        store.prefetch(object_ids=["u0", "u1"])
        store.subscribe("i2", ("u0", "u1"))
        assert store.waiting_on("u0") == ["i1", "i2"]
        store.subscribe("i1", ("u1",))
        assert store.waiting_on("u0") == ["i2"]
        assert store.waiting_on("u1") == ["i1", "i2"]
    with store.transaction():
        assert store.waiting_on("u1") == ["i1", "i2"]


def test_a_rolled_back_savepoint_leaves_nothing_cached(store: SqlStore) -> None:
    with store.transaction():
        store.prefetch(object_ids=["u0"])
        with pytest.raises(RuntimeError), store.transaction():
            store.update_object("u0", {"name": "changed"}, AT)
            store.subscribe("i2", ("u0",))
            raise RuntimeError
        rec = store.get_object("u0")
        assert rec is not None and rec.data["name"] == "U0"
        assert store.waiting_on("u0") == ["i1"]


def test_an_empty_timer_look_is_forgotten_when_a_timer_is_scheduled(store: SqlStore) -> None:
    with store.transaction():
        assert store.next_timer(AT) is None
        store.add_timer(TimerRecord("i1.j1", "i1", AT - timedelta(minutes=1), 0))
        due = store.next_timer(AT)
        assert due is not None and due.id == "i1.j1"


def test_bulk_written_values_read_back_unchanged(store: SqlStore) -> None:
    data = {
        "name": 'Quote " and \\ backslash, ёлка',
        "birthday": date(1990, 5, 17),
        "seen_at": datetime(2026, 3, 1, 23, 30, tzinfo=TZ),
        "gap": timedelta(hours=36),
        "tags": ["a", "b"],
        "none": None,
    }
    with store.transaction():
        store.put_object(ObjectRecord("x1", "user", data), AT)
    with store.transaction():
        rec = store.get_object("x1")
    assert rec is not None and rec.data == data


def test_prefetch_locks_objects_on_postgresql(pg_database: str) -> None:
    """(SQLite has one writer at a time: no row locks to take there.)"""
    first = _open(pg_database)
    try:
        with first.transaction():
            first.put_object(ObjectRecord("u0", "user", {"name": "U0"}), AT)
        second = SqlStore(first.engine, first.schema, tz=TZ)
        with first.transaction():
            first.prefetch(object_ids=["u0"], lock_objects=True)
            with second.engine.connect() as other, other.begin():
                other.execute(text("SET LOCAL lock_timeout = '200ms'"))
                with pytest.raises(Exception, match="lock"):
                    other.execute(text("SELECT 1 FROM objects WHERE id = 'u0' FOR UPDATE"))
    finally:
        first.close()


def test_id_blocks_let_concurrent_transactions_take_ids_without_waiting(
    pg_database: str,
) -> None:
    """With ``id_block`` (workers, API processes), ids come from reserved blocks: a second
    process takes ids while the first one's transaction is open, and a rolled-back
    transaction's ids are skipped, never handed out twice."""
    schema = load_recipe(RECIPE).schema
    assert schema is not None
    first = open_store(pg_database, copy.deepcopy(schema), tz=TZ, reset=True, id_block=10)
    second = SqlStore(first.engine, copy.deepcopy(schema), tz=TZ, id_block=10)
    try:
        with first.transaction():
            mine = [first.new_instance_id() for _ in range(3)]
            with second.transaction():
                assert second._tx is not None
                second._tx.conn.execute(text("SET LOCAL lock_timeout = '500ms'"))
                theirs = [second.new_instance_id() for _ in range(12)]
        assert mine == ["i1", "i2", "i3"]
        assert theirs == [f"i{n}" for n in range(11, 23)]
        with pytest.raises(RuntimeError), first.transaction():
            assert first.new_instance_id() == "i4"
            raise RuntimeError
        assert first.new_instance_id() == "i5"  # i4 is skipped, not reused
    finally:
        first.close()


def test_a_value_postgresql_refuses_is_a_refusal_not_a_crash(pg_database: str) -> None:
    """Validation keeps NUL characters out of objects; a value that gets past it anyway is
    refused by the database, reported as a refusal, and the request changes nothing."""
    from sqlalchemy.exc import DBAPIError

    from flowlane.core.errors import Refused
    from flowlane.services.account import Account

    store = _open(pg_database)
    try:
        with pytest.raises(DBAPIError) as raw, store.transaction():
            store.put_object(ObjectRecord("u9", "user", {"name": "a\x00b"}), AT)
        assert raw.value.orig is not None  # the driver's error, as SQLAlchemy raises it
        account = Account(store, AT)
        with pytest.raises(Refused, match="the database refused a value"):
            account.attempt(
                lambda: store.put_object(ObjectRecord("u9", "user", {"name": "a\x00b"}), AT)
            )
        assert store.get_object("u9") is None
    finally:
        store.close()
