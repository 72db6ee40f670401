"""The store contract: what every :class:`~flowlane.store.base.Store` implementation must do.

Each test runs on :class:`~flowlane.store.memory.MemoryStore` (the reference) and on
:class:`~flowlane.store.sql.store.SqlStore` over SQLite and PostgreSQL, and looks only at what
the protocol returns. The memory store hands out the stored records themselves and the SQL
store copies; the tests depend on neither: every change is written back with ``put_*``, and
records are compared by value (datetimes too, whatever their ``tzinfo``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from flowlane.core.errors import NotFound
from flowlane.engine.context import ObjectRecord
from flowlane.engine.state import InstanceState, Token
from flowlane.model.definition import Definition
from flowlane.model.recipe import Recipe, load_recipe
from flowlane.objects import FieldSpec, ObjectType
from flowlane.store.base import Store
from flowlane.store.memory import MemoryStore
from flowlane.store.records import (
    IncidentRecord,
    MessageRecord,
    ProcessStatus,
    TaskQuery,
    TaskRecord,
    TimerRecord,
)
from flowlane.store.sql import open_store

TZ = ZoneInfo("Europe/Moscow")
AT = datetime(2024, 5, 1, 10, 0, tzinfo=TZ)
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "order-processing"
DICTIONARY = "cancel_reasons"


class Boom(Exception):
    """Raised inside a transaction to make it roll back."""


@pytest.fixture(scope="module")
def recipe() -> Recipe:
    return load_recipe(RECIPE)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, recipe: Recipe, tmp_path: Path) -> Iterator[Store]:
    assert recipe.schema is not None
    schema = copy.deepcopy(recipe.schema)
    opened: Store
    if request.param == "memory":
        opened = MemoryStore(schema, tz=TZ)
    elif request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path}/x.db", schema, tz=TZ, reset=True)
    else:
        url = request.getfixturevalue("pg_database")
        opened = open_store(url, schema, tz=TZ, reset=True)
    try:
        yield opened
    finally:
        opened.close()


# ---- builders -------------------------------------------------------------------------------


def _instance(
    instance_id: str,
    process: str = "new-order",
    object_id: str | None = "order-1",
    parent: str | None = None,
    **kw: Any,
) -> InstanceState:
    return InstanceState(
        id=instance_id,
        process=process,
        version=1,
        object_id=object_id,
        parent=None if parent is None else {"id": parent, "block": "sub", "token": 1},
        started_at=AT,
        **kw,
    )


def _task(task_id: str, instance_id: str = "i1", **kw: Any) -> TaskRecord:
    values: dict[str, Any] = {
        "id": task_id,
        "instance_id": instance_id,
        "process": "new-order",
        "block": "ask",
        "kind": "question",
        "object_id": "order-1",
        "title": "Call the client",
        "text": "Ask whether they will pay",
        "assignee": "user-1",
        "options": ("yes", "no"),
        "fields": {},
        "workflow": None,
        "waits": True,
        "priority": "normal",
        "reaction_s": 3600,
        "created_at": AT,
    }
    values.update(kw)
    return TaskRecord(**values)


def _timer(timer_id: str, due_at: datetime, **kw: Any) -> TimerRecord:
    return TimerRecord(id=timer_id, instance_id="i1", due_at=due_at, order=0, **kw)


def _message(message_id: str, channel: str = "inapp", **kw: Any) -> MessageRecord:
    values: dict[str, Any] = {
        "id": message_id,
        "instance_id": "i1",
        "process": "new-order",
        "block": "tell",
        "channel": channel,
        "to": "user-1",
        "recipient": "user-1",
        "subject": f"subject {message_id}",
        "body": f"body {message_id}",
        "created_at": AT,
    }
    values.update(kw)
    return MessageRecord(**values)


def _history(instance_id: str | None, event: str, minutes: int = 0) -> dict[str, Any]:
    return {
        "time": (AT + timedelta(minutes=minutes)).isoformat(),
        "instance": instance_id,
        "process": "new-order",
        "block": "start",
        "event": event,
        "details": {"n": minutes, "on": date(2024, 5, 2), "at": AT, "list": [1, "two"]},
    }


def _ids(items: list[Any]) -> list[str]:
    return [item.id for item in items]


def _timer_fields(timer: TimerRecord | None) -> tuple[Any, ...] | None:
    if timer is None:
        return None
    return (timer.id, timer.instance_id, timer.due_at, timer.kind, timer.process)


def _deploy_spec(store: Store, recipe: Recipe, key: str, **changes: Any) -> Definition:
    spec = recipe.processes[key]
    if changes:
        spec = spec.model_copy(update=changes)
    return store.deploy(Definition.build(spec, source=recipe.sources[key]))


# ---- processes ------------------------------------------------------------------------------


def test_deploy_versions(store: Store, recipe: Recipe) -> None:
    assert store.definition("new-order") is None
    assert store.process_keys() == []

    first = _deploy_spec(store, recipe, "new-order")
    assert first.version == 1
    assert first.spec == recipe.processes["new-order"]

    again = _deploy_spec(store, recipe, "new-order")
    assert again.version == 1
    assert store.definition("new-order").version == 1  # type: ignore[union-attr]

    second = _deploy_spec(store, recipe, "new-order", description="changed for the test")
    assert second.version == 2
    latest = store.definition("new-order")
    assert latest is not None
    assert latest.version == 2
    assert latest.spec.description == "changed for the test"

    old = store.version("new-order", 1)
    assert old.version == 1
    assert old.spec == recipe.processes["new-order"]
    assert store.version("new-order", 2).spec == second.spec

    # the latest spec again: still version 2; the first one again: a new version 3
    assert _deploy_spec(store, recipe, "new-order", description="changed for the test").version == 2
    assert _deploy_spec(store, recipe, "new-order").version == 3

    _deploy_spec(store, recipe, "reach-by-phone")
    assert store.process_keys() == ["new-order", "reach-by-phone"]
    assert store.definition("reach-by-phone").version == 1  # type: ignore[union-attr]


# ---- ids ------------------------------------------------------------------------------------


def test_ids_count_up(store: Store) -> None:
    assert [store.new_instance_id() for _ in range(3)] == ["i1", "i2", "i3"]
    assert store.new_object_id("order") == "order-1"
    assert store.new_object_id("order") == "order-2"
    assert store.new_object_id("user") == "user-1"
    assert store.new_object_id("order") == "order-3"
    assert store.new_instance_id() == "i4"


# ---- instances ------------------------------------------------------------------------------


def test_instance_round_trip_and_update(store: Store) -> None:
    assert store.get_instance("i1") is None
    state = _instance(
        "i1",
        status="running",
        vars={
            "day": date(2024, 5, 3),
            "when": datetime(2024, 5, 3, 12, 30, tzinfo=TZ),
            "utc": datetime(2024, 5, 3, 9, 0, tzinfo=UTC),
            "span": timedelta(hours=2),
            "nested": {"list": [1, 2.5, "x", None, True], "day": date(2024, 1, 1)},
        },
        counters={"calls": 2, "amount": 10.5},
        tokens=[
            Token(1, "start"),
            Token(
                2,
                "ask",
                came_from="start",
                wait={"k": "task", "task": "i1.t1"},
                answer={"choice": "yes", "on": date(2024, 5, 4)},
            ),
        ],
        seq=7,
        children=["i2"],
    )
    store.put_instance(state)
    got = store.get_instance("i1")
    assert got == state
    assert got is not None
    assert got.vars["when"] == datetime(2024, 5, 3, 12, 30, tzinfo=TZ)
    assert got.started_at == AT

    changed = replace(
        copy.deepcopy(state),
        status="ended",
        outcome="positive",
        result="paid",
        tokens=[],
        vars={**state.vars, "paid": True},
        counters={"calls": 3},
        ended_at=AT + timedelta(days=1),
    )
    store.put_instance(changed)
    assert store.get_instance("i1") == changed
    assert _ids(store.instances_of()) == ["i1"]


def test_instances_of_filters_in_creation_order(store: Store) -> None:
    store.put_instance(_instance("i3", "new-order", "order-1"))
    store.put_instance(_instance("i1", "reach-by-phone", "order-1"))
    store.put_instance(_instance("i2", "new-order", "order-2"))
    store.put_instance(_instance("i4", "new-order", None))
    # updating an instance keeps its place
    store.put_instance(_instance("i3", "new-order", "order-1", status="ended"))

    assert _ids(store.instances_of()) == ["i3", "i1", "i2", "i4"]
    assert _ids(store.instances_of(process="new-order")) == ["i3", "i2", "i4"]
    assert _ids(store.instances_of(object_id="order-1")) == ["i3", "i1"]
    assert _ids(store.instances_of(process="new-order", object_id="order-1")) == ["i3"]
    assert store.instances_of(process="nothing") == []
    assert [s.status for s in store.instances_of(object_id="order-1")] == ["ended", "running"]


def test_children_of(store: Store) -> None:
    store.put_instance(_instance("i1"))
    store.put_instance(_instance("i2"))
    store.put_instance(_instance("i3", "reach-by-phone", parent="i1"))
    store.put_instance(_instance("i4", "reach-by-phone", parent="i2"))
    store.put_instance(_instance("i5", "reach-by-phone", parent="i1"))

    assert _ids(store.children_of({"i1"})) == ["i3", "i5"]
    assert _ids(store.children_of({"i1", "i2"})) == ["i3", "i4", "i5"]
    assert store.children_of({"i3"}) == []
    assert store.children_of(set()) == []
    assert store.children_of({"nobody"}) == []


def test_subscribe_and_waiting_on(store: Store) -> None:
    for iid in ("i2", "i10", "i11"):
        store.put_instance(_instance(iid))
    assert store.waiting_on("order-1") == []

    store.subscribe("i10", ("order-1", "order-2"))
    store.subscribe("i2", ("order-1",))
    store.subscribe("i11", ("order-2", "order-2"))
    assert store.waiting_on("order-1") == ["i2", "i10"]
    assert store.waiting_on("order-2") == ["i10", "i11"]

    # a new subscription replaces the old one
    store.subscribe("i10", ("order-2", "order-3"))
    assert store.waiting_on("order-1") == ["i2"]
    assert store.waiting_on("order-2") == ["i10", "i11"]
    assert store.waiting_on("order-3") == ["i10"]

    store.subscribe("i2", ())
    assert store.waiting_on("order-1") == []
    assert store.waiting_on("order-9") == []


# ---- launch bookkeeping ---------------------------------------------------------------------


def test_entered_matched_approved(store: Store) -> None:
    assert not store.has_entered("new-order", "order-1")
    store.mark_entered("new-order", "order-1")
    store.mark_entered("new-order", "order-1")  # twice is fine
    store.mark_entered("new-order", "order-2")
    store.mark_entered("reach-by-phone", "order-1")
    assert store.has_entered("new-order", "order-1")
    assert not store.has_entered("new-order", "order-3")
    store.forget_entered("new-order")
    assert not store.has_entered("new-order", "order-1")
    assert not store.has_entered("new-order", "order-2")
    assert store.has_entered("reach-by-phone", "order-1")

    assert store.matched("new-order") == set()
    store.set_matched("new-order", {"order-1", "order-2"})
    store.set_matched("reach-by-phone", {"order-9"})
    assert store.matched("new-order") == {"order-1", "order-2"}
    store.set_matched("new-order", {"order-2", "order-3"})
    assert store.matched("new-order") == {"order-2", "order-3"}
    store.set_matched("new-order", set())
    assert store.matched("new-order") == set()
    assert store.matched("reach-by-phone") == {"order-9"}

    assert not store.is_approved("new-order")
    store.approve("new-order", "user-1", AT)
    store.approve("new-order", None, AT)  # twice is fine
    assert store.is_approved("new-order")
    assert not store.is_approved("reach-by-phone")


def test_process_status_and_revoked_approval(store: Store) -> None:
    assert store.process_status("new-order") is None
    store.put_process_status(ProcessStatus("new-order", "active", AT))
    assert store.process_status("new-order") == ProcessStatus("new-order", "active", AT, None)
    later = AT + timedelta(hours=1)
    stopped = ProcessStatus("new-order", "stopped", AT, later)
    store.put_process_status(stopped)
    found = store.process_status("new-order")
    assert found == stopped and found is not stopped
    assert found is not None and not found.active
    found.status = "active"  # a copy: changing it changes nothing stored
    assert store.process_status("new-order") == stopped
    assert store.process_status("reach-by-phone") is None
    with store.transaction():
        assert store.process_status("new-order") == stopped  # read again inside
    store.approve("new-order", "user-1", AT)
    store.approve("reach-by-phone", "user-1", AT)
    store.revoke_approval("new-order")
    store.revoke_approval("new-order")  # twice is fine
    assert not store.is_approved("new-order")
    assert store.is_approved("reach-by-phone")
    store.approve("new-order", "user-1", later)
    assert store.is_approved("new-order")


# ---- objects --------------------------------------------------------------------------------


def test_objects_put_get_update(store: Store) -> None:
    assert store.get_object("order-1") is None
    data = {
        "status": "new",
        "amount": 100,
        "paid_amount": 0.5,
        "due": date(2024, 6, 1),
        "seen": datetime(2024, 5, 1, 8, 15, 30, 123456, tzinfo=TZ),
        "seen_utc": datetime(2024, 5, 1, 5, 0, tzinfo=UTC),
        "history": [{"on": date(2024, 5, 1), "note": "x"}],
        "empty": None,
    }
    store.put_object(ObjectRecord("order-1", "order", copy.deepcopy(data)), AT)
    got = store.get_object("order-1")
    assert got == ObjectRecord("order-1", "order", data)

    # put replaces the data
    store.put_object(ObjectRecord("order-1", "order", {"status": "paid"}), AT)
    assert store.get_object("order-1") == ObjectRecord("order-1", "order", {"status": "paid"})

    before = store.update_object(
        "order-1", {"amount": 5, "due": date(2024, 7, 1)}, AT + timedelta(hours=1)
    )
    assert before == {"status": "paid"}
    assert store.get_object("order-1") == ObjectRecord(
        "order-1", "order", {"status": "paid", "amount": 5, "due": date(2024, 7, 1)}
    )
    before = store.update_object("order-1", {"status": "cancelled"}, AT + timedelta(hours=2))
    assert before == {"status": "paid", "amount": 5, "due": date(2024, 7, 1)}
    assert store.get_object("order-1").data["status"] == "cancelled"  # type: ignore[union-attr]
    assert store.get_object("order-2") is None


def test_objects_of_type_and_users(store: Store) -> None:
    for oid in ("order-2", "order-10", "order-1"):
        store.put_object(ObjectRecord(oid, "order", {"amount": 1}), AT)
    users = {
        "user-2": {"email": "b@example.com", "role": "operator", "groups": ["sales", "support"]},
        "user-1": {"email": "a@example.com", "role": "manager", "groups": ["sales"]},
        "user-3": {"email": "c@example.com", "role": "operator"},
    }
    for uid, data in users.items():
        store.put_object(ObjectRecord(uid, "user", data), AT)

    assert store.objects_of_type("order") == ["order-1", "order-10", "order-2"]
    assert store.objects_of_type("user") == ["user-1", "user-2", "user-3"]
    assert store.objects_of_type("nothing") == []

    assert store.user_by_email("b@example.com") == "user-2"
    assert store.user_by_email("nobody@example.com") is None

    assert store.users("role:manager") == ["user-1"]
    assert store.users("role:operator") == ["user-2", "user-3"]
    assert store.users("group:sales") == ["user-1", "user-2"]
    assert store.users("group:support") == ["user-2"]
    assert store.users("group:nobody") == []
    assert store.users("user:user-3") == ["user-3"]
    assert store.users("user:user-9") == []


def test_add_dictionary_value(store: Store) -> None:
    values = store.schema.dictionaries[DICTIONARY]
    assert "wrong_number" not in values
    store.add_dictionary_value(DICTIONARY, "wrong_number", AT)
    store.add_dictionary_value(DICTIONARY, "wrong_number", AT)  # twice adds it once
    assert store.schema.dictionaries[DICTIONARY].count("wrong_number") == 1

    with pytest.raises(Boom), store.transaction():
        store.add_dictionary_value(DICTIONARY, "rolled_back", AT)
        assert "rolled_back" in store.schema.dictionaries[DICTIONARY]
        raise Boom
    assert "rolled_back" not in store.schema.dictionaries[DICTIONARY]
    assert "wrong_number" in store.schema.dictionaries[DICTIONARY]

    # the store forgot it too: adding it again works and adds it once
    store.add_dictionary_value(DICTIONARY, "rolled_back", AT)
    assert store.schema.dictionaries[DICTIONARY].count("rolled_back") == 1


# ---- object types -----------------------------------------------------------------------------


def _room(*fields: FieldSpec) -> ObjectType:
    return ObjectType("room", "Room", {f.name: f for f in fields}, stages=("free", "busy"))


def test_object_types_dictionaries_and_groups(store: Store) -> None:
    room = _room(FieldSpec("size", "integer", default=2), FieldSpec("at", "date"))
    store.put_object_type(room, AT)
    assert store.schema.types["room"] == room
    wider = _room(FieldSpec("size", "number"))
    store.put_object_type(wider, AT)
    assert store.schema.types["room"] == wider
    store.put_dictionary("sizes", ["s", "m"], AT)
    store.put_dictionary("sizes", ["m", "l"], AT)  # adds what is new, in order
    assert store.schema.dictionaries["sizes"] == ["s", "m", "l"]
    groups = store.schema.groups
    store.add_group("vip", AT)
    store.add_group("vip", AT)
    assert store.schema.groups == (*groups, "vip")

    with pytest.raises(Boom), store.transaction():
        store.put_object_type(room, AT)
        store.put_object_type(ObjectType("desk", "Desk"), AT)
        store.put_dictionary("sizes", ["xl"], AT)
        store.put_dictionary("colours", ["red"], AT)
        store.add_group("rolled_back", AT)
        raise Boom
    assert store.schema.types["room"] == wider
    assert "desk" not in store.schema.types
    assert store.stored_type("room") == wider
    assert store.stored_type("desk") is None
    assert store.schema.dictionaries["sizes"] == ["s", "m", "l"]
    assert "colours" not in store.schema.dictionaries
    assert store.schema.groups == (*groups, "vip")


def test_deployed_types(store: Store) -> None:
    """What a deploy declared is kept apart from the schema, survives a round trip through the
    stored spec and rolls back with the transaction."""
    assert store.deployed_types() == {}
    room = _room(
        FieldSpec("size", "integer", default=2), FieldSpec("at", "date", default=date(2024, 5, 1))
    )
    store.put_deployed_type(room, AT)
    store.put_deployed_type(ObjectType("desk", "Desk"), AT)
    assert store.deployed_types() == {"room": room, "desk": ObjectType("desk", "Desk")}
    assert "room" not in store.schema.types and store.stored_type("room") is None
    wider = _room(FieldSpec("size", "number", label="Size", required=True))
    with store.transaction():
        store.put_deployed_type(wider, AT)
        assert store.deployed_types()["room"] == wider
    assert store.deployed_types()["room"] == wider

    with pytest.raises(Boom), store.transaction():
        store.put_deployed_type(room, AT)
        store.put_deployed_type(ObjectType("lamp", "Lamp"), AT)
        assert set(store.deployed_types()) == {"room", "desk", "lamp"}
        raise Boom
    assert store.deployed_types() == {"room": wider, "desk": ObjectType("desk", "Desk")}


def test_object_pages_and_rewrite(store: Store) -> None:
    for n in range(5):
        store.put_object(ObjectRecord(f"room-{n}", "room", {"size": str(n)}), AT)
    store.put_object(ObjectRecord("order-1", "order", {"number": "A-1"}), AT)
    with store.transaction():
        pages = list(store.object_pages("room", 2))
        assert [[r.id for r in page] for page in pages] == [
            ["room-0", "room-1"],
            ["room-2", "room-3"],
            ["room-4"],
        ]
        assert pages[0][1].data == {"size": "1"}
        pages[0][1].data["size"] = "changed"  # a copy: the store keeps its own
        assert store.get_object("room-1").data == {"size": "1"}  # type: ignore[union-attr]
        store.rewrite_objects(
            [
                ObjectRecord(r.id, r.type, {"size": int(r.data["size"]), "on": date(2024, 5, 1)})
                for r in pages[1]
            ],
            AT,
        )
        assert store.get_object("room-2").data == {"size": 2, "on": date(2024, 5, 1)}  # type: ignore[union-attr]
    with pytest.raises(Boom), store.transaction():
        store.rewrite_objects([ObjectRecord("room-0", "room", {"size": 0})], AT)
        raise Boom
    assert store.get_object("room-0").data == {"size": "0"}  # type: ignore[union-attr]
    assert store.get_object("room-3").data == {"size": 3, "on": date(2024, 5, 1)}  # type: ignore[union-attr]
    assert list(store.object_pages("desk")) == []


# ---- tasks ----------------------------------------------------------------------------------


def _put_instances(store: Store, *instance_ids: str) -> None:
    """Tasks belong to stored instances (the SQL store enforces it with a foreign key)."""
    for iid in instance_ids:
        store.put_instance(_instance(iid))


def test_task_round_trip(store: Store) -> None:
    _put_instances(store, "i1")
    assert store.get_task("i1.t1") is None
    task = _task(
        "i1.t1",
        kind="workflow",
        options=("call", "postpone", "cancel"),
        fields={"due": date(2024, 5, 10), "amount": 12.5, "note": None, "tags": ["a", "b"]},
        workflow={"initial": "new", "statuses": {"new": ["done"], "done": []}},
        waits=False,
        priority="high",
        reaction_s=None,
        status="new",
        comments=[
            {"by": "user-1", "at": AT + timedelta(minutes=5), "text": "called"},
            {"by": None, "at": datetime(2024, 5, 1, 7, 10, tzinfo=UTC), "text": "system"},
        ],
        history=[{"status": "new", "at": AT, "by": None, "day": date(2024, 5, 1)}],
    )
    store.put_task(task)
    assert store.get_task("i1.t1") == task

    done = copy.deepcopy(task)
    done.status = "done"
    done.closed = True
    done.closed_at = AT + timedelta(hours=3)
    done.answer = {"choice": "call", "on": date(2024, 5, 2), "at": AT}
    done.history.append({"status": "done", "at": AT + timedelta(hours=3), "by": "user-1"})
    done.assignee = None
    store.put_task(done)
    got = store.get_task("i1.t1")
    assert got == done
    assert got is not None
    assert isinstance(got.options, tuple)
    assert got.closed_at == AT + timedelta(hours=3)
    assert got.created_at == AT
    assert len(store.find_tasks()) == 1


def test_find_and_delete_tasks(store: Store) -> None:
    _put_instances(store, "i1", "i2", "i3")
    store.put_task(_task("i3.t1", "i3", block="call", object_id="order-2"))
    store.put_task(_task("i1.t1", "i1"))
    store.put_task(_task("i2.t1", "i2", process="reach-by-phone", object_id=None))
    store.put_task(_task("i1.t2", "i1", block="call"))
    # closing a task keeps its place
    store.put_task(_task("i3.t1", "i3", block="call", object_id="order-2", closed=True))

    assert _ids(store.find_tasks()) == ["i3.t1", "i1.t1", "i2.t1", "i1.t2"]
    assert _ids(store.find_tasks(open_only=True)) == ["i1.t1", "i2.t1", "i1.t2"]
    assert _ids(store.find_tasks(block="call")) == ["i3.t1", "i1.t2"]
    assert _ids(store.find_tasks(block="call", open_only=True)) == ["i1.t2"]
    assert _ids(store.find_tasks(object_id="order-1")) == ["i1.t1", "i1.t2"]
    assert _ids(store.find_tasks(process="reach-by-phone")) == ["i2.t1"]
    assert _ids(store.find_tasks(instance_ids={"i1", "i3"})) == ["i3.t1", "i1.t1", "i1.t2"]
    assert _ids(store.find_tasks(instance_ids={"i1"}, block="ask")) == ["i1.t1"]
    assert store.find_tasks(instance_ids=set()) == []
    assert store.find_tasks(instance_ids={"nobody"}) == []

    store.delete_tasks(["i1.t1", "i3.t1", "missing"])
    store.delete_tasks([])
    assert _ids(store.find_tasks()) == ["i2.t1", "i1.t2"]
    assert store.get_task("i1.t1") is None


def test_task_counts(store: Store) -> None:
    assert store.tasks_created() == {}
    store.count_task_created("new-order", "ask", "order-1")
    store.count_task_created("new-order", "ask", "order-1")
    store.count_task_created("new-order", "ask", "order-2")
    store.count_task_created("new-order", "call", None)
    assert store.tasks_created() == {
        ("new-order", "ask", "order-1"): 2,
        ("new-order", "ask", "order-2"): 1,
        ("new-order", "call", None): 1,
    }

    assert store.open_task_count("user-1") == 0
    _put_instances(store, "i1")
    store.put_task(_task("i1.t1", assignee="user-1"))
    store.put_task(_task("i1.t2", assignee="user-1"))
    store.put_task(_task("i1.t3", assignee="user-2"))
    store.put_task(_task("i1.t4", assignee=None))
    store.put_task(_task("i1.t5", assignee="user-1", closed=True, status="answered"))
    assert store.open_task_count("user-1") == 2
    assert store.open_task_count("user-2") == 1
    store.put_task(_task("i1.t2", assignee="user-2"))
    assert store.open_task_count("user-1") == 1
    assert store.open_task_count("user-2") == 2
    assert store.open_task_count("user-9") == 0


# ---- timers ---------------------------------------------------------------------------------


def test_timers_order_and_until(store: Store) -> None:
    late = _timer("late", AT + timedelta(hours=2))
    tie_a = _timer("tie-a", AT + timedelta(hours=1))
    tie_b = _timer("tie-b", AT + timedelta(hours=1))
    # 07:30 UTC is 10:30 in Moscow: due between AT and the ties
    utc = _timer("utc", datetime(2024, 5, 1, 7, 30, tzinfo=UTC))
    for timer in (late, tie_b, tie_a, utc):
        store.add_timer(timer)
    assert late.order < tie_b.order < tie_a.order < utc.order

    assert store.next_timer(AT) is None
    assert store.next_timer(AT + timedelta(minutes=29)) is None
    assert _timer_fields(store.next_timer(AT + timedelta(minutes=30))) == _timer_fields(utc)
    store.cancel_timer("utc")
    store.cancel_timer("missing")
    assert store.next_timer(AT + timedelta(minutes=59)) is None
    # ties in scheduling order; due exactly at ``until`` counts
    assert _timer_fields(store.next_timer(AT + timedelta(hours=1))) == _timer_fields(tie_b)
    assert _timer_fields(store.next_timer(AT + timedelta(days=9))) == _timer_fields(tie_b)

    popped = store.pop_timer("tie-b")
    assert _timer_fields(popped) == _timer_fields(tie_b)
    assert store.pop_timer("tie-b") is None
    assert _timer_fields(store.next_timer(AT + timedelta(days=9))) == _timer_fields(tie_a)
    assert _timer_fields(store.pop_timer("tie-a")) == _timer_fields(tie_a)
    assert _timer_fields(store.next_timer(AT + timedelta(hours=1, minutes=59))) is None
    assert _timer_fields(store.next_timer(AT + timedelta(hours=2))) == _timer_fields(late)
    assert store.pop_timer("late") is not None
    assert store.next_timer(AT + timedelta(days=9)) is None


def test_timer_rescheduled_and_periodic(store: Store) -> None:
    first = _timer("t1", AT + timedelta(hours=1))
    store.add_timer(first)
    store.add_timer(_timer("t2", AT + timedelta(hours=2)))
    # cancelled and scheduled again later: the old due time is gone
    store.cancel_timer("t1")
    store.add_timer(_timer("t1", AT + timedelta(hours=3)))
    assert _ids([store.next_timer(AT + timedelta(days=1))]) == ["t2"]  # type: ignore[list-item]
    store.pop_timer("t2")
    found = store.next_timer(AT + timedelta(days=1))
    assert found is not None
    assert (found.id, found.due_at) == ("t1", AT + timedelta(hours=3))

    periodic = TimerRecord(
        id="periodic:new-order",
        instance_id=None,
        due_at=AT,
        order=0,
        kind="periodic",
        process="new-order",
    )
    store.add_timer(periodic)
    got = store.next_timer(AT)
    assert got is not None
    assert (got.id, got.instance_id, got.kind, got.process, got.due_at) == (
        "periodic:new-order",
        None,
        "periodic",
        "new-order",
        AT,
    )
    popped = store.pop_timer("periodic:new-order")
    assert popped is not None
    assert (popped.kind, popped.process, popped.instance_id) == ("periodic", "new-order", None)
    assert popped.due_at == AT


# ---- effects --------------------------------------------------------------------------------


def test_messages_and_notifications(store: Store) -> None:
    assert store.messages() == []
    first = _message("m1", to="+70000000000", recipient=None)
    second = _message("m2", created_at=datetime(2024, 5, 1, 8, 0, tzinfo=UTC))
    store.add_message(first)
    store.add_notification(_message("n1", subject="notice"))
    store.add_message(second)

    assert store.messages() == [first, second]
    assert store.messages(since=1) == [second]
    assert store.messages(since=2) == []
    assert store.messages()[1].created_at == datetime(2024, 5, 1, 11, 0, tzinfo=TZ)
    assert _ids(store.notifications()) == ["n1"]
    assert store.notifications()[0].subject == "notice"
    store.add_notification(_message("n2"))
    assert _ids(store.notifications(since=1)) == ["n2"]

    # email messages: one more message in the outbox, whatever status the store gives it
    store.add_message(_message("m3", channel="email", to="client@example.com"))
    assert _ids(store.messages(since=2)) == ["m3"]
    assert store.messages(since=2)[0].to == "client@example.com"


def test_incidents(store: Store) -> None:
    assert store.incidents() == []
    store.add_incident(IncidentRecord("i1", "ask", "first", AT))
    store.add_incident(IncidentRecord("i2", None, "other", AT + timedelta(minutes=1)))
    store.add_incident(IncidentRecord("i1", "call", "second", AT + timedelta(minutes=2)))
    assert [(i.instance_id, i.message) for i in store.incidents()] == [
        ("i1", "first"),
        ("i2", "other"),
        ("i1", "second"),
    ]
    assert store.incidents(open_only=True) == store.incidents()

    store.resolve_incidents("i1")
    assert store.incidents() == [
        IncidentRecord("i1", "ask", "first", AT, resolved=True),
        IncidentRecord("i2", None, "other", AT + timedelta(minutes=1)),
        IncidentRecord("i1", "call", "second", AT + timedelta(minutes=2), resolved=True),
    ]
    assert store.incidents(open_only=True) == [
        IncidentRecord("i2", None, "other", AT + timedelta(minutes=1))
    ]
    store.resolve_incidents("nobody")
    assert len(store.incidents()) == 3


def test_history(store: Store) -> None:
    assert list(store.history()) == []
    lines = [
        _history("i1", "started", 0),
        _history("i2", "started", 1),
        _history(None, "deployed", 2),
        _history("i1", "ended", 3),
    ]
    for line in lines:
        store.add_history(copy.deepcopy(line))
    assert list(store.history()) == lines
    assert list(store.history("i1")) == [lines[0], lines[3]]
    assert list(store.history(instance_id="i2")) == [lines[1]]
    assert list(store.history("nobody")) == []


# ---- transactions ---------------------------------------------------------------------------


def _seed(store: Store) -> None:
    """A little of everything, committed."""
    assert store.new_instance_id() == "i1"
    assert store.new_object_id("order") == "order-1"
    store.put_object(ObjectRecord("order-1", "order", {"status": "new", "amount": 10}), AT)
    store.put_instance(_instance("i1", vars={"x": 1}))
    store.subscribe("i1", ("order-1",))
    store.put_task(_task("i1.t1"))
    store.add_timer(_timer("t1", AT + timedelta(hours=1)))
    store.add_message(_message("m1"))
    store.add_notification(_message("n1"))
    store.add_incident(IncidentRecord("i1", "ask", "failed", AT))
    store.add_history(_history("i1", "started"))
    store.mark_entered("new-order", "order-1")
    store.set_matched("new-order", {"order-1"})
    store.count_task_created("new-order", "ask", "order-1")


def _snapshot(store: Store) -> dict[str, Any]:
    """Everything the protocol shows, as plain values."""
    return {
        "instances": [copy.deepcopy(s) for s in store.instances_of()],
        "order-1": copy.deepcopy(store.get_object("order-1")),
        "order-2": store.get_object("order-2"),
        "orders": store.objects_of_type("order"),
        "tasks": [copy.deepcopy(t) for t in store.find_tasks()],
        "next_timer": _timer_fields(store.next_timer(AT + timedelta(days=30))),
        "messages": [copy.deepcopy(m) for m in store.messages()],
        "notifications": [copy.deepcopy(m) for m in store.notifications()],
        "incidents": [copy.deepcopy(i) for i in store.incidents()],
        "history": [copy.deepcopy(h) for h in store.history()],
        "waiting": {o: store.waiting_on(o) for o in ("order-1", "order-2")},
        "entered": [
            store.has_entered(p, o)
            for p in ("new-order", "reach-by-phone")
            for o in ("order-1", "order-2")
        ],
        "matched": store.matched("new-order"),
        "approved": store.is_approved("new-order"),
        "status": store.process_status("new-order"),
        "created": store.tasks_created(),
        "open_tasks": store.open_task_count("user-1"),
        "dictionary": list(store.schema.dictionaries[DICTIONARY]),
    }


def _change_everything(store: Store) -> None:
    """Touch every kind of thing the store keeps."""
    assert store.new_instance_id() == "i2"
    assert store.new_object_id("order") == "order-2"
    store.put_instance(_instance("i2", "reach-by-phone", "order-2", parent="i1"))
    store.put_instance(_instance("i1", status="ended", vars={"x": 2}))
    store.subscribe("i1", ("order-2",))
    store.subscribe("i2", ("order-1",))
    store.put_object(ObjectRecord("order-2", "order", {"status": "new"}), AT)
    store.update_object("order-1", {"status": "paid"}, AT)
    store.put_task(_task("i2.t1", "i2", assignee="user-1"))
    store.put_task(_task("i1.t1", closed=True, status="answered"))
    store.add_timer(_timer("t2", AT))
    store.cancel_timer("t1")
    store.add_message(_message("m2"))
    store.add_message(_message("m3", channel="email", to="client@example.com"))
    store.add_notification(_message("n2"))
    store.add_incident(IncidentRecord("i2", None, "also failed", AT))
    store.resolve_incidents("i1")
    store.add_history(_history("i2", "started", 5))
    store.mark_entered("new-order", "order-2")
    store.mark_entered("reach-by-phone", "order-1")
    store.forget_entered("new-order")
    store.set_matched("new-order", {"order-2"})
    store.approve("new-order", "user-1", AT)
    store.put_process_status(ProcessStatus("new-order", "stopped", None, AT))
    store.count_task_created("new-order", "ask", "order-1")
    store.count_task_created("reach-by-phone", "call", None)
    store.add_dictionary_value(DICTIONARY, "rolled_back", AT)


def test_failed_transaction_leaves_nothing(store: Store) -> None:
    _seed(store)
    before = _snapshot(store)

    with pytest.raises(Boom), store.transaction():
        _change_everything(store)
        assert _snapshot(store) != before
        raise Boom

    assert _snapshot(store) == before
    # counters for ids are rolled back too
    assert store.new_instance_id() == "i2"
    assert store.new_object_id("order") == "order-2"
    assert store.new_object_id("user") == "user-1"


def test_completed_transaction_is_visible(store: Store) -> None:
    _seed(store)
    with store.transaction():
        _change_everything(store)
        inside = _snapshot(store)
    assert _snapshot(store) == inside
    assert store.get_instance("i1").status == "ended"  # type: ignore[union-attr]
    assert store.get_object("order-1").data["status"] == "paid"  # type: ignore[union-attr]
    assert _ids(store.find_tasks(open_only=True)) == ["i2.t1"]
    assert _timer_fields(store.next_timer(AT + timedelta(days=30))) == _timer_fields(
        _timer("t2", AT)
    )
    assert store.is_approved("new-order")
    assert store.new_instance_id() == "i3"


def test_nested_transaction_rolls_back_only_the_inner_part(store: Store) -> None:
    _seed(store)
    with store.transaction():
        store.put_instance(_instance("i1", vars={"x": "outer"}))
        store.put_object(ObjectRecord("order-3", "order", {"status": "outer"}), AT)
        assert store.new_instance_id() == "i2"
        store.add_history(_history("i1", "outer"))
        inner_before = _snapshot(store)

        with pytest.raises(Boom), store.transaction():
            _change_everything_after_outer(store)
            raise Boom

        assert _snapshot(store) == inner_before
        assert store.new_instance_id() == "i3"  # i3 was rolled back with the inner part
        store.add_message(_message("m-outer"))

    instance = store.get_instance("i1")
    assert instance is not None
    assert instance.vars == {"x": "outer"}
    assert store.get_object("order-3") == ObjectRecord("order-3", "order", {"status": "outer"})
    assert store.get_instance("i3") is None
    assert store.get_task("i3.t1") is None
    assert [h["event"] for h in store.history()] == ["started", "outer"]
    assert _ids(store.messages()) == ["m1", "m-outer"]
    assert store.new_instance_id() == "i4"


def _change_everything_after_outer(store: Store) -> None:
    assert store.new_instance_id() == "i3"
    store.put_instance(_instance("i3", "reach-by-phone", "order-1", parent="i1"))
    store.put_instance(_instance("i1", status="ended", vars={"x": "inner"}))
    store.update_object("order-1", {"status": "paid"}, AT)
    store.update_object("order-3", {"status": "inner"}, AT)
    store.subscribe("i1", ("order-2",))
    store.put_task(_task("i3.t1", "i3"))
    store.put_task(_task("i1.t1", closed=True))
    store.add_timer(_timer("t3", AT))
    store.cancel_timer("t1")
    store.add_message(_message("m3"))
    store.add_notification(_message("n3"))
    store.add_incident(IncidentRecord("i3", None, "inner", AT))
    store.resolve_incidents("i1")
    store.add_history(_history("i3", "inner"))
    store.mark_entered("new-order", "order-3")
    store.forget_entered("new-order")
    store.set_matched("new-order", set())
    store.approve("new-order", None, AT)
    store.count_task_created("new-order", "ask", "order-1")


def test_nested_rollback_undoes_dictionary_value(store: Store) -> None:
    with store.transaction():
        with pytest.raises(Boom), store.transaction():
            store.add_dictionary_value(DICTIONARY, "inner", AT)
            raise Boom
        store.add_dictionary_value(DICTIONARY, "outer", AT)
    values = store.schema.dictionaries[DICTIONARY]
    assert "outer" in values
    assert "inner" not in values


def test_failed_transaction_undoes_deploy(store: Store, recipe: Recipe) -> None:
    _deploy_spec(store, recipe, "new-order")
    with pytest.raises(Boom), store.transaction():
        assert _deploy_spec(store, recipe, "new-order", description="v2").version == 2
        assert _deploy_spec(store, recipe, "reach-by-phone").version == 1
        raise Boom
    assert store.process_keys() == ["new-order"]
    assert store.definition("new-order").version == 1  # type: ignore[union-attr]
    again = _deploy_spec(store, recipe, "new-order", description="v2 again")
    assert again.version == 2
    assert store.version("new-order", 2).spec.description == "v2 again"


def test_nested_rollback_undoes_deploy(store: Store, recipe: Recipe) -> None:
    """A rolled-back deploy leaves no cached version behind."""
    _deploy_spec(store, recipe, "new-order")
    with store.transaction():
        with pytest.raises(Boom), store.transaction():
            assert _deploy_spec(store, recipe, "new-order", description="v2").version == 2
            raise Boom
        assert store.definition("new-order").version == 1  # type: ignore[union-attr]
    with pytest.raises((NotFound, KeyError, IndexError)):
        store.version("new-order", 2)


def test_user_selector_names_only_users(store: Store) -> None:
    store.put_object(ObjectRecord("order-1", "order", {"number": "A-1"}), AT)
    store.put_object(ObjectRecord("anna", "user", {"name": "Anna"}), AT)
    assert store.users("user:order-1") == []
    assert store.users("user:anna") == ["anna"]
    assert store.users("user:nobody") == []


# ---- inbox, task table, statistics ----------------------------------------------------------


def _inbox_tasks(store: Store) -> None:
    _put_instances(store, "i1")
    hour = 3600
    for tid, kw in [
        ("a", {"reaction_s": hour}),  # due 11:00, overdue at 12:00
        ("b", {"priority": "urgent", "reaction_s": None}),
        ("c", {"priority": "low", "reaction_s": 2 * hour}),  # due exactly now: not overdue
        ("d", {"priority": "high", "reaction_s": 5 * hour}),
        ("e", {"priority": "high", "reaction_s": 3 * hour}),
        ("f", {"priority": "high", "reaction_s": None}),
        ("g", {"priority": "high", "reaction_s": None}),  # ties with f: creation order
        ("h", {"priority": "urgent", "reaction_s": 60}),
        ("i", {"reaction_s": hour // 2}),
        ("closed", {"closed": True, "status": "answered", "reaction_s": 60}),
        ("other", {"assignee": "user-2", "reaction_s": 60}),
        ("hidden", {"inbox": False, "reaction_s": 60}),
        ("x", {"assignee": None, "process": "reach-by-phone", "reaction_s": None}),
        ("y", {"assignee": None, "reaction_s": 60}),  # unassigned, not an executor there
    ]:
        store.put_task(_task(tid, "i1", **kw))


def test_inbox_order_and_pages(store: Store) -> None:
    _inbox_tasks(store)
    now = AT + timedelta(hours=2)
    page = store.inbox("user-1", {"reach-by-phone"}, now, offset=0, limit=50)
    assert _ids(page) == ["h", "i", "a", "b", "e", "d", "f", "g", "x", "c"]
    assert page[0].inbox and page[0].due_at == AT + timedelta(seconds=60)
    assert _ids(store.inbox("user-1", {"reach-by-phone"}, now, offset=2, limit=3)) == [
        "a",
        "b",
        "e",
    ]
    assert _ids(store.inbox("user-1", (), now, offset=8, limit=5)) == ["c"]
    assert store.inbox("user-1", (), now, offset=20, limit=5) == []
    # a second later the low task is overdue too, and comes after the overdue normal ones
    later = store.inbox("user-1", (), now + timedelta(seconds=1), limit=4)
    assert _ids(later) == ["h", "i", "a", "c"]
    assert _ids(store.inbox("user-2", (), now)) == ["other"]


def test_inbox_sees_changes_of_the_transaction(store: Store) -> None:
    _inbox_tasks(store)
    now = AT + timedelta(hours=2)
    with store.transaction():
        task = store.get_task("h")
        assert task is not None
        task.assignee = "user-2"
        store.put_task(task)
        assert _ids(store.inbox("user-2", (), now)) == ["h", "other"]
    assert _ids(store.inbox("user-1", (), now, limit=2)) == ["i", "a"]


def _table_tasks(store: Store) -> None:
    _put_instances(store, "i1", "i2")
    for n, kw in enumerate(
        [
            {"assignee": "user-2", "status": "b_work", "reaction_s": 600},
            {"assignee": None, "status": "a_new", "priority": "urgent", "reaction_s": None},
            {"assignee": "user-1", "status": "bwork", "priority": "low", "reaction_s": 60},
            {"assignee": "user-1", "status": "a_new", "object_id": "order-2", "reaction_s": 60},
            {"assignee": "user-2", "status": "done", "closed": True, "priority": "high"},
            {"process": "reach-by-phone", "instance_id": "i2"},
        ]
    ):
        store.put_task(_task(f"t{n}", **{"created_at": AT + timedelta(minutes=n), **kw}))


def test_task_page_sorts_filters_and_pages(store: Store) -> None:
    _table_tasks(store)
    q = TaskQuery(process="new-order")

    def ids(**kw: Any) -> tuple[list[str], int]:
        query = kw.pop("query", q)
        tasks, total = store.task_page(query, **kw)
        return _ids(tasks), total

    assert ids() == (["t0", "t1", "t2", "t3", "t4"], 5)
    assert ids(descending=True) == (["t4", "t3", "t2", "t1", "t0"], 5)
    assert ids(offset=1, limit=2) == (["t1", "t2"], 5)
    assert ids(offset=9) == ([], 5)
    # due: t2 and t3 due at 11:03 and 11:04 (+60 s), t0 at 11:10, t4 (3600 s) at 12:04
    assert ids(sort="due_at") == (["t2", "t3", "t0", "t4", "t1"], 5)
    assert ids(sort="due_at", descending=True) == (["t4", "t0", "t3", "t2", "t1"], 5)
    assert ids(sort="priority") == (["t1", "t4", "t0", "t3", "t2"], 5)
    assert ids(sort="priority", descending=True) == (["t2", "t0", "t3", "t4", "t1"], 5)
    # byte order: '_' (0x5f) before 'w' — whatever the database's collation
    assert ids(sort="status") == (["t1", "t3", "t0", "t2", "t4"], 5)
    assert ids(sort="assignee") == (["t2", "t3", "t0", "t4", "t1"], 5)
    assert ids(sort="assignee", descending=True) == (["t0", "t4", "t2", "t3", "t1"], 5)
    assert ids(query=TaskQuery(process="new-order", assignee="user-1")) == (["t2", "t3"], 2)
    assert ids(query=TaskQuery(process="new-order", unassigned=True)) == (["t1"], 1)
    assert ids(query=TaskQuery(process="new-order", status="a_new")) == (["t1", "t3"], 2)
    assert ids(query=TaskQuery(process="new-order", open_only=True))[1] == 4
    assert ids(query=TaskQuery(object_ids=("order-2",))) == (["t3"], 1)
    assert ids(query=TaskQuery(object_ids=())) == ([], 0)
    window = TaskQuery(
        process="new-order",
        created_from=AT + timedelta(minutes=1),
        created_to=AT + timedelta(minutes=3),
    )
    assert ids(query=window) == (["t1", "t2"], 2)
    assert ids(query=TaskQuery()) == (["t0", "t1", "t2", "t3", "t4", "t5"], 6)


def test_task_statistics_by_day_in_the_account_zone(store: Store) -> None:
    _put_instances(store, "i1")
    # Moscow is UTC+3: 20:59:59 UTC is still 1 May there, 21:00 UTC is 2 May
    last = datetime(2024, 5, 1, 20, 59, 59, tzinfo=UTC)
    first = datetime(2024, 5, 1, 21, 0, tzinfo=UTC)
    for tid, at, kw in [
        ("s1", last, {}),
        ("s2", last, {}),
        ("s3", first, {}),
        ("s4", first, {"assignee": None}),
        ("s5", last, {"status": "answered", "closed": True}),
        ("s6", first, {"assignee": "user-2"}),
        ("s7", first, {"process": "reach-by-phone"}),
    ]:
        store.put_task(_task(tid, created_at=at, **kw))
    may1, may2 = date(2024, 5, 1), date(2024, 5, 2)
    rows = store.task_statistics(TaskQuery(process="new-order"))
    assert [(r.assignee, r.status, r.day, r.count) for r in rows] == [
        ("user-1", "answered", may1, 1),
        ("user-1", "open", may1, 2),
        ("user-1", "open", may2, 1),
        ("user-2", "open", may2, 1),
        (None, "open", may2, 1),
    ]
    rows = store.task_statistics(TaskQuery(process="new-order", open_only=True, created_to=first))
    assert [(r.assignee, r.day, r.count) for r in rows] == [("user-1", may1, 2)]
    rows = store.task_statistics(TaskQuery(process="new-order", unassigned=True))
    assert [(r.assignee, r.count) for r in rows] == [(None, 1)]
    assert store.task_statistics(TaskQuery(process="nothing")) == []


# ---- account settings ------------------------------------------------------------------------


def test_settings_are_written_once(store: Store) -> None:
    assert store.setting("signing_secret") is None
    with store.transaction():
        assert store.setting_or_put("signing_secret", "aa") == "aa"
    with store.transaction():
        assert store.setting_or_put("signing_secret", "bb") == "aa"
    assert store.setting("signing_secret") == "aa"
