"""Stored object types: Account.define_type / change_type / add_dictionary / add_group, on
memory, SQLite and PostgreSQL; the schema survives reopening; a deploy merges objects.yaml.

Every request runs through ``Account.attempt``, as callers run it: a refusal changes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tests.support import write_recipe

from flowlane.core.errors import Refused
from flowlane.model.definition import Definition
from flowlane.model.recipe import parse_process
from flowlane.model.yamlio import parse_text
from flowlane.objects import Schema, build_schema, type_spec
from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable
from flowlane.services import typedefs
from flowlane.services.account import Account
from flowlane.store.base import Store
from flowlane.store.memory import MemoryStore
from flowlane.store.sql import open_store

TZ = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)
OBJECTS: dict[str, Any] = {
    "types": {
        "event": {
            "label": "Event",
            "stages": ["new", "preparation", "registration"],
            "success": "held",
            "failure": "cancelled",
            "fields": {
                "kind": {"type": "link", "to": "dictionary:event_type"},
                "seats": {"type": "string"},
                "host": {"type": "link", "to": "user"},
                "note": {"type": "text"},
            },
        }
    },
    "dictionaries": {"event_type": ["offline", "online", "hybrid"]},
    "groups": ["watch-only"],
}


@dataclass
class Opened:
    """A store kind: ``open()`` gives a store on the same data each time (memory: one)."""

    kind: str
    open: Callable[[], Store]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opened]:
    schema = build_schema(OBJECTS)
    stores: list[Store] = []
    if request.param == "memory":
        memory = MemoryStore(copy.deepcopy(schema), tz=TZ)

        def make() -> Store:
            return memory

    else:
        url = (
            f"sqlite:///{tmp_path}/types.db"
            if request.param == "sqlite"
            else request.getfixturevalue("pg_database")
        )
        open_store(url, copy.deepcopy(schema), tz=TZ, reset=True).close()

        def make() -> Store:
            return open_store(url, copy.deepcopy(schema), tz=TZ)

    def tracked() -> Store:
        store = make()
        stores.append(store)
        return store

    yield Opened(request.param, tracked)
    for store in stores:
        store.close()


@pytest.fixture
def account(opened: Opened) -> Account:
    acc = Account(opened.open(), NOW)
    do(acc, lambda: acc.create_object("user", {"name": "Olga", "role": "owner"}, object_id="olga"))
    do(
        acc,
        lambda: acc.create_object("user", {"name": "Ivan", "role": "employee"}, object_id="ivan"),
    )
    return acc


def do(account: Account, action: Callable[[], Any]) -> Any:
    out: list[Any] = []
    account.attempt(lambda: out.append(action()))
    return out[0]


def refused(account: Account, action: Callable[[], Any]) -> str:
    with pytest.raises(Refused) as caught:
        account.attempt(lambda: action())
    return caught.value.message


def events(account: Account, *seats: Any) -> list[str]:
    return [
        do(account, lambda s=s: account.create_object("event", {"seats": s}))  # type: ignore[misc]
        for s in seats
    ]


def data(account: Account, oid: str) -> dict[str, Any]:
    rec = account.store.get_object(oid)
    assert rec is not None
    return dict(rec.data)


def spec_with(**fields: Any) -> dict[str, Any]:
    """The event type of OBJECTS with ``fields`` changed (None: removed)."""
    spec: dict[str, Any] = copy.deepcopy(OBJECTS["types"]["event"])
    for name, field in fields.items():
        if field is None:
            del spec["fields"][name]
        else:
            spec["fields"][name] = field
    return spec


# ---- define ----------------------------------------------------------------------------------


def test_define_type_then_create_objects_of_it(account: Account) -> None:
    spec = {
        "label": "Ticket",
        "stages": ["open", "work"],
        "success": "done",
        "fields": {
            "title": {"type": "string", "required": True},
            "priority": {"type": "enum", "values": ["low", "high"], "default": "low"},
            "event": {"type": "link", "to": "event"},
            "parent": {"type": "link", "to": "ticket"},
        },
    }
    made = do(account, lambda: account.define_type("ticket", spec, by="olga"))
    assert made.key == "ticket" and made.stages == ("open", "work")
    assert "ticket" in [t.key for t in account.object_types()]
    ev = events(account, "10")[0]
    tid = do(account, lambda: account.create_object("ticket", {"title": "Chairs", "event": ev}))
    assert data(account, tid) == {
        "title": "Chairs",
        "event": ev,
        "priority": "low",
        "stage": "open",
    }
    assert "field 'title': a value is required" in refused(
        account, lambda: account.create_object("ticket", {"priority": "high"})
    )
    assert "no event 'ivan'" in refused(
        account, lambda: account.create_object("ticket", {"title": "x", "event": "ivan"})
    )


@pytest.mark.parametrize(
    ("key", "spec", "expected"),
    [
        ("order", {"fields": {}}, "type 'order' exists already"),
        ("event", {"fields": {}}, "type 'event' exists already"),
        ("room", {"fields": {"stage": {"type": "string"}}}, "room.stage: 'stage' is a reserved"),
        ("room", {"fields": {"id": {"type": "string"}}}, "room.id: 'id' is a reserved name"),
        ("room", {"fields": {"size": {"type": "enum"}}}, "room.size: an enum needs 'values'"),
        ("room", {"fields": {"size": {"type": "big"}}}, "room.fields.size.type: 'big' is not"),
        ("room", {"fields": {"n": {"type": "integer", "default": "x"}}}, "room.n: default:"),
        ("room", {"fields": {"at": {"type": "link", "to": "house"}}}, "link to unknown type"),
        (
            "room",
            {"fields": {"k": {"type": "enum", "dictionary": "sizes"}}},
            "room.k: dictionary 'sizes' does not exist",
        ),
        ("room", {"colour": "red"}, "room: unknown key 'colour'"),
        ("room", {"success": "done"}, "room: 'success' needs 'stages'"),
        ("my room", {}, "type key 'my room'"),
        ("room", ["fields"], "the spec must be a mapping"),
    ],
)
def test_define_type_refusals(account: Account, key: str, spec: Any, expected: str) -> None:
    before = [t.key for t in account.object_types()]
    assert expected in refused(account, lambda: account.define_type(key, spec, by="olga"))
    assert [t.key for t in account.object_types()] == before


def test_only_admins_and_owners_define_and_change_types(account: Account) -> None:
    assert "ivan (employee) may not define type room" in refused(
        account, lambda: account.define_type("room", {}, by="ivan")
    )
    assert "may not change type event" in refused(
        account, lambda: account.change_type("event", spec_with(), by="ivan")
    )
    assert "may not add group" in refused(account, lambda: account.add_group("vip", by="ivan"))
    assert "room" not in account.store.schema.types
    assert "type 'room' does not exist" in refused(
        account, lambda: account.change_type("room", {}, by="olga")
    )


# ---- change: conversions ---------------------------------------------------------------------


def test_string_to_integer_converts_every_value(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(typedefs, "PAGE", 2)  # several pages
    ids = events(account, "12", " 7", None, "-3", "40")
    do(account, lambda: account.change_type("event", spec_with(seats={"type": "integer"})))
    assert [data(account, oid).get("seats") for oid in ids] == [12, 7, None, -3, 40]
    assert account.store.schema.types["event"].fields["seats"].type == "integer"
    assert "field 'seats': 'many' is not an integer" in refused(
        account, lambda: account.create_object("event", {"seats": "many"})
    )


def test_one_value_that_does_not_convert_refuses_and_changes_nothing(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(typedefs, "PAGE", 2)  # the bad value is on the last page
    ids = events(account, "12", "7", "3", "4", "many")
    message = refused(
        account, lambda: account.change_type("event", spec_with(seats={"type": "integer"}))
    )
    assert message == (
        f"event.seats: the value of {ids[4]} cannot become integer: 'many' is not an integer"
    )
    assert [data(account, oid)["seats"] for oid in ids] == ["12", "7", "3", "4", "many"]
    assert account.store.schema.types["event"].fields["seats"].type == "string"


def test_other_conversions(account: Account) -> None:
    (ev,) = events(account, "2026-03-05")
    do(account, lambda: account.change_type("event", spec_with(seats={"type": "date"})))
    assert data(account, ev)["seats"] == date(2026, 3, 5)
    do(account, lambda: account.change_type("event", spec_with(seats={"type": "datetime"})))
    assert data(account, ev)["seats"] == datetime(2026, 3, 5, tzinfo=TZ)
    do(account, lambda: account.change_type("event", spec_with(seats={"type": "string"})))
    assert data(account, ev)["seats"] == "2026-03-05T00:00:00+03:00"


def test_enum_values_and_string_to_link(account: Account) -> None:
    do(account, lambda: account.change_type("event", spec_with(note={"type": "string"})))
    (ev,) = events(account, "1")
    do(account, lambda: account.update_object(ev, {"note": "ivan"}))
    # to a link: the value must name an object of the target type
    assert "event.note: the value of event-1 cannot become link: no order 'ivan'" in refused(
        account,
        lambda: account.change_type("event", spec_with(note={"type": "link", "to": "order"})),
    )
    do(
        account,
        lambda: account.change_type("event", spec_with(note={"type": "link", "to": "user"})),
    )
    assert data(account, ev)["note"] == "ivan"
    # an enum losing the stored value
    do(account, lambda: account.update_object(ev, {"kind": "online"}))
    shrunk = {"type": "enum", "values": ["offline", "hybrid"]}
    assert "event.kind: the value of event-1 cannot become enum: 'online' is not one of" in (
        refused(account, lambda: account.change_type("event", spec_with(kind=shrunk)))
    )
    kept = {"type": "enum", "values": ["offline", "online"]}
    do(account, lambda: account.change_type("event", spec_with(kind=kept)))
    assert data(account, ev)["kind"] == "online"


SET_KIND = """
key: set-kind
name: set the kind
object: event
blocks:
  start: {type: start, next: op}
  op: {type: operation, set: {kind: online}, next: done}
  done: {type: end}
"""


def test_a_literal_set_is_checked_again_after_a_type_change(account: Account) -> None:
    spec, problems = parse_process(parse_text(SET_KIND, source="set-kind"), source="set-kind")
    assert spec is not None, problems
    do(account, lambda: account.deploy(Definition.build(spec)))
    first, second = events(account, "1", "2")
    do(account, lambda: account.start("set-kind", first, by="olga"))
    assert data(account, first)["kind"] == "online"
    do(account, lambda: account.update_object(first, {"kind": "offline"}))
    shrunk = {"type": "enum", "values": ["offline", "hybrid"]}
    do(account, lambda: account.change_type("event", spec_with(kind=shrunk)))
    do(account, lambda: account.start("set-kind", second, by="olga"))
    assert "kind" not in data(account, second)  # not the value validated before the change
    assert [i.message for i in account.store.incidents(open_only=True)] == [
        f"event {second}: field 'kind': 'online' is not one of offline, hybrid"
    ]


# ---- change: refusals ------------------------------------------------------------------------


def test_removing_a_field_with_values(account: Account) -> None:
    ids = events(account, "1", None, "3")
    message = refused(account, lambda: account.change_type("event", spec_with(seats=None)))
    assert message == (
        f"event.seats: the field cannot be removed: 2 objects hold a value (e.g. {ids[0]}); "
        "pass drop_fields=['seats'] to delete the values"
    )
    assert data(account, ids[0])["seats"] == "1"
    assert "event.note: drop_fields names a field this change does not remove" in refused(
        account,
        lambda: account.change_type("event", spec_with(seats=None), drop_fields=["seats", "note"]),
    )
    do(account, lambda: account.change_type("event", spec_with(seats=None), drop_fields=["seats"]))
    assert all("seats" not in data(account, oid) for oid in ids)
    assert "seats" not in account.store.schema.types["event"].fields
    # a field no object holds a value for goes without asking
    do(account, lambda: account.change_type("event", spec_with(seats=None, note=None)))
    assert "note" not in account.store.schema.types["event"].fields


def test_link_target_and_passwords_do_not_change_under_values(account: Account) -> None:
    (ev,) = events(account, "1")
    to_order = {"type": "link", "to": "order"}
    do(account, lambda: account.change_type("event", spec_with(host=to_order)))  # no values yet
    do(
        account,
        lambda: account.change_type("event", spec_with(host={"type": "link", "to": "user"})),
    )
    do(account, lambda: account.update_object(ev, {"host": "ivan"}))
    assert refused(account, lambda: account.change_type("event", spec_with(host=to_order))) == (
        f"event.host: the link target cannot change from user to order: 1 object holds a value "
        f"(e.g. {ev})"
    )
    assert "event.seats: cannot become or stop being a password" in refused(
        account, lambda: account.change_type("event", spec_with(seats={"type": "password"}))
    )
    assert account.store.schema.types["event"].fields["host"].to == "user"


def test_stages(account: Account) -> None:
    ids = events(account, "1", "2")
    do(account, lambda: account.update_object(ids[1], {"stage": "registration"}))
    spec = spec_with()
    spec["stages"] = ["new", "preparation"]
    assert refused(account, lambda: account.change_type("event", spec)) == (
        f"event: stage 'registration' cannot be removed: 1 object is in it (e.g. {ids[1]})"
    )
    do(account, lambda: account.update_object(ids[1], {"stage": "held"}))
    spec["stages"] = ["new", "registration"]
    spec["success"] = "done"
    assert refused(account, lambda: account.change_type("event", spec)) == (
        f"event: final stage 'held' cannot be removed: 1 object is in it (e.g. {ids[1]})"
    )
    spec["success"] = "held"
    do(account, lambda: account.change_type("event", spec))  # 'preparation' held no object
    assert account.store.schema.types["event"].stages == ("new", "registration")


def test_a_type_that_gets_stages_puts_its_objects_in_the_first(account: Account) -> None:
    do(account, lambda: account.define_type("room", {"fields": {"size": {"type": "integer"}}}))
    rid = do(account, lambda: account.create_object("room", {"size": 3}))
    assert "stage" not in data(account, rid)
    do(
        account,
        lambda: account.change_type(
            "room", {"stages": ["free", "busy"], "fields": {}}, drop_fields=["size"]
        ),
    )
    assert data(account, rid) == {"stage": "free"}


def test_built_in_types_are_extended(account: Account) -> None:
    oid = do(account, lambda: account.create_object("order", {"number": "A-1", "amount": 5}))
    do(
        account,
        lambda: account.change_type(
            "order", {"fields": {"amount": {"type": "integer"}, "vip": {"type": "boolean"}}}
        ),
    )
    order = account.store.schema.types["order"]
    assert order.builtin and order.fields["vip"].type == "boolean"
    assert set(order.fields) >= {"number", "status", "client", "manager", "paid_amount"}
    assert data(account, oid)["amount"] == 5
    do(account, lambda: account.update_object(oid, {"vip": True}))
    # a spec without `vip` removes it (built-in fields stay: they always do)
    assert "order.vip: the field cannot be removed: 1 object holds a value" in refused(
        account, lambda: account.change_type("order", {"fields": {}})
    )


# ---- dictionaries, groups, users -------------------------------------------------------------


def test_dictionaries_and_groups(account: Account) -> None:
    do(account, lambda: account.add_dictionary("sizes", ["s", "m"], by="olga"))
    assert account.store.schema.dictionaries["sizes"] == ["s", "m"]
    assert "dictionary 'sizes' exists already" in refused(
        account, lambda: account.add_dictionary("sizes", ["l"])
    )
    assert "value 's' is listed twice" in refused(
        account, lambda: account.add_dictionary("fits", ["s", "s"])
    )
    assert "dictionary fits: value ''" in refused(
        account, lambda: account.add_dictionary("fits", [""])
    )
    assert "fits" not in account.store.schema.dictionaries
    do(account, lambda: account.add_dictionary_value("sizes", "l"))
    size = {"type": "link", "to": "dictionary:sizes"}
    do(account, lambda: account.define_type("shirt", {"fields": {"size": size}}))
    do(account, lambda: account.create_object("shirt", {"size": "l"}))
    assert "group 'watch-only' exists already" in refused(
        account, lambda: account.add_group("watch-only")
    )
    assert "group 'a b': no spaces or commas" in refused(account, lambda: account.add_group("a b"))
    do(account, lambda: account.add_group("vip", by="olga"))
    assert account.store.schema.groups == ("watch-only", "vip")


def test_user_roles_groups_and_personal_manager(account: Account) -> None:
    assert "field 'role': 'boss' is not one of owner, admin, manager, employee, client" in (
        refused(account, lambda: account.create_object("user", {"role": "boss"}))
    )
    for role in ("owner", "admin", "manager", "employee", "client"):
        uid = do(account, lambda r=role: account.create_object("user", {"role": r}))  # type: ignore[misc]
        assert data(account, uid)["role"] == role
    assert data(account, do(account, lambda: account.create_object("user", {})))["role"] == "client"
    assert "unknown group 'vip' (groups: watch-only)" in refused(
        account, lambda: account.create_object("user", {"groups": ["vip"]})
    )
    do(account, lambda: account.add_group("vip"))
    uid = do(account, lambda: account.create_object("user", {"groups": ["vip", "watch-only"]}))
    assert data(account, uid)["groups"] == ["vip", "watch-only"]
    order = do(account, lambda: account.create_object("order", {"number": "1"}))
    assert f"field 'personal_manager': no user '{order}'" in refused(
        account, lambda: account.update_object(uid, {"personal_manager": order})
    )
    assert "no user 'nobody'" in refused(
        account, lambda: account.update_object(uid, {"personal_manager": "nobody"})
    )
    do(account, lambda: account.update_object(uid, {"personal_manager": "ivan"}))
    assert data(account, uid)["personal_manager"] == "ivan"


# ---- persistence -----------------------------------------------------------------------------


def test_the_stored_schema_survives_reopening(opened: Opened, account: Account) -> None:
    do(
        account,
        lambda: account.define_type(
            "room", {"fields": {"when": {"type": "date", "default": "2026-01-02"}}}
        ),
    )
    do(account, lambda: account.add_dictionary("sizes", ["s", "m"]))
    do(account, lambda: account.add_dictionary_value("sizes", "l"))
    do(account, lambda: account.add_group("vip"))
    ids = events(account, "5")
    do(account, lambda: account.change_type("event", spec_with(seats={"type": "integer"})))
    schema: Schema = copy.deepcopy(account.store.schema)
    account.store.close()
    again = Account(opened.open(), NOW)
    assert again.store.schema.types == schema.types
    assert again.store.schema.dictionaries["sizes"] == ["s", "m", "l"]
    assert again.store.schema.groups == ("watch-only", "vip")
    assert data(again, ids[0])["seats"] == 5
    assert data(again, do(again, lambda: again.create_object("room", {})))["when"] == date(
        2026, 1, 2
    )


def test_a_refused_change_leaves_the_stored_schema(opened: Opened, account: Account) -> None:
    events(account, "many")
    refused(account, lambda: account.change_type("event", spec_with(seats={"type": "integer"})))
    refused(account, lambda: account.define_type("room", {"fields": {"x": {"type": "enum"}}}))
    account.store.close()
    again = Account(opened.open(), NOW)
    assert again.store.schema.types["event"].fields["seats"].type == "string"
    assert "room" not in again.store.schema.types


# ---- deploying a recipe ----------------------------------------------------------------------

EVENT_YAML = """
types:
  event:
    stages: [new, held]
    fields:
      seats: {{type: {seats}}}
dictionaries:
  event_type: [{kinds}]
groups: [{groups}]
"""


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_deploy_merges_objects_yaml_into_the_stored_schema(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path}/d.db" if kind == "sqlite" else request.getfixturevalue("pg_database")
    )

    def deployed(seats: str, kinds: str, groups: str) -> Account:
        root = write_recipe(
            tmp_path / f"r-{seats}",
            {},
            objects=EVENT_YAML.format(seats=seats, kinds=kinds, groups=groups),
        )
        recipe = load_valid_recipe(root)
        store = open_durable(recipe, url)
        try:
            deploy(recipe, store)
        except BaseException:
            store.close()
            raise
        return Account(store, NOW)

    first = deployed("string", "online", "a")
    ids = [do(first, lambda s=s: first.create_object("event", {"seats": s})) for s in ("1", "2")]  # type: ignore[misc]
    do(first, lambda: first.define_type("room", {"fields": {}}))
    do(
        first,
        lambda: first.change_type(
            "event",
            {
                "stages": ["new", "held"],
                "fields": {"seats": {"type": "string"}, "extra": {"type": "text"}},
            },
        ),
    )
    first.store.close()

    second = deployed("integer", "offline", "b")  # seats become integers; extra stays
    event = second.store.schema.types["event"]
    assert event.fields["seats"].type == "integer" and "extra" in event.fields
    assert "room" in second.store.schema.types
    assert second.store.schema.dictionaries["event_type"] == ["online", "offline"]
    assert second.store.schema.groups == ("a", "b")
    assert [data(second, oid)["seats"] for oid in ids] == [1, 2]
    do(second, lambda: second.update_object(ids[0], {"seats": 100}))
    second.store.close()

    with pytest.raises(Refused, match=r"event\.seats: the value of event-1 cannot become boolean"):
        deployed("boolean", "hybrid", "c")
    third = Account(open_durable(load_valid_recipe(tmp_path / "r-integer"), url), NOW)
    try:
        assert third.store.schema.types["event"].fields["seats"].type == "integer"
        assert third.store.schema.dictionaries["event_type"] == ["online", "offline"]
        assert data(third, ids[0])["seats"] == 100
    finally:
        third.store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_deploy_converts_objects_of_a_built_in_type_it_declares_first(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The store opens with the new recipe's types; a built-in type never stored before must
    still be changed from the built-in one, checking the stored objects."""
    url = (
        f"sqlite:///{tmp_path}/b.db" if kind == "sqlite" else request.getfixturevalue("pg_database")
    )
    event = "types:\n  event:\n    fields:\n      seats: {type: string}\n"
    order = "  order:\n    fields:\n      amount: {type: integer}\n"

    def deployed(name: str, objects: str) -> Account:
        recipe = load_valid_recipe(write_recipe(tmp_path / name, {}, objects=objects))
        store = open_durable(recipe, url)
        try:
            deploy(recipe, store)
        except BaseException:
            store.close()
            raise
        return Account(store, NOW)

    first = deployed("v1", event)
    oid = do(first, lambda: first.create_object("order", {"number": "A-1", "amount": 5.5}))
    first.store.close()
    with pytest.raises(Refused, match=rf"order\.amount: the value of {oid} cannot become integer"):
        deployed("v2", event + order)
    second = Account(open_durable(load_valid_recipe(tmp_path / "v1"), url), NOW)
    try:
        assert data(second, oid)["amount"] == 5.5
        do(second, lambda: second.update_object(oid, {"amount": 6}))
    finally:
        second.store.close()
    third = deployed("v2b", event + order)
    try:
        assert third.store.schema.types["order"].fields["amount"].type == "integer"
        assert data(third, oid)["amount"] == 6
    finally:
        third.store.close()


# ---- a redeploy applies only what the recipe changed -----------------------------------------


def ticket_recipe(
    *, label: str = "Ticket", levels: tuple[str, ...] = ("a", "b"), **fields: Any
) -> Schema:
    """A recipe's objects.yaml: a custom type ``ticket`` (``fields`` change its fields, None
    removes one), the built-in ``order`` extended with an enum, a dictionary."""
    declared: dict[str, Any] = {
        "level": {"type": "enum", "values": list(levels)},
        "note": {"type": "string"},
    }
    for name, field in fields.items():
        if field is None:
            declared.pop(name, None)
        else:
            declared[name] = field
    return build_schema(
        {
            "types": {
                "ticket": {"label": label, "fields": declared},
                "order": {"fields": {"channel": {"type": "enum", "values": ["web", "shop"]}}},
            },
            "dictionaries": {"topics": ["billing", "tech"]},
        }
    )


def deploy_objects(account: Account, schema: Schema) -> list[str]:
    written: list[str] = do(account, lambda: account.deploy_objects(schema))
    return written


def admin_change(account: Account, key: str, **fields: Any) -> None:
    """What an admin does in the UI: the stored type with ``fields`` changed."""
    spec = type_spec(account.store.schema.types[key])
    spec["fields"].update(fields)
    do(account, lambda: account.change_type(key, spec))


def field_values(account: Account, key: str, name: str) -> tuple[str, ...] | None:
    return account.store.schema.types[key].fields[name].values


LEVELS_ABC = {"type": "enum", "values": ["a", "b", "c"]}
CHANNELS = {"type": "enum", "values": ["web", "shop", "phone"]}


@pytest.mark.parametrize("held", [False, True], ids=["no-values", "objects-hold-them"])
def test_a_redeploy_of_the_unchanged_recipe_keeps_what_admins_changed(
    opened: Opened, account: Account, held: bool
) -> None:
    assert "ticket" in deploy_objects(account, ticket_recipe())
    ticket = do(account, lambda: account.create_object("ticket", {"level": "a"}))
    admin_change(account, "ticket", level=LEVELS_ABC, extra={"type": "text"})
    admin_change(account, "order", channel=CHANNELS)
    do(account, lambda: account.add_dictionary_value("topics", "legal"))
    order = do(account, lambda: account.create_object("order", {"number": "A-1"}))
    if held:
        do(account, lambda: account.update_object(ticket, {"level": "c", "extra": "x"}))
        do(account, lambda: account.update_object(order, {"channel": "phone"}))

    def unchanged(acc: Account) -> None:
        assert field_values(acc, "ticket", "level") == ("a", "b", "c")
        assert "extra" in acc.store.schema.types["ticket"].fields
        assert field_values(acc, "order", "channel") == ("web", "shop", "phone")
        assert acc.store.schema.dictionaries["topics"] == ["billing", "tech", "legal"]
        assert data(acc, ticket)["level"] == ("c" if held else "a")
        assert data(acc, order).get("channel") == ("phone" if held else None)

    assert deploy_objects(account, ticket_recipe()) == []
    unchanged(account)
    do(account, lambda: account.update_object(ticket, {"level": "c"}))  # still accepted
    do(account, lambda: account.update_object(ticket, {"level": "c" if held else "a"}))
    again = Account(opened.open(), NOW)  # what the last deploy declared is stored too
    assert deploy_objects(again, ticket_recipe()) == []
    unchanged(again)


def test_a_redeploy_applies_what_the_recipe_changed_since_the_last_deploy(
    opened: Opened, account: Account
) -> None:
    deploy_objects(account, ticket_recipe())
    ticket = do(account, lambda: account.create_object("ticket", {"level": "a", "note": "5"}))
    admin_change(account, "ticket", level=LEVELS_ABC)
    admin_change(account, "order", channel=CHANNELS)
    do(account, lambda: account.update_object(ticket, {"level": "c"}))

    # The recipe changes another field, adds one and renames the type: applied, converting
    # the objects; the admin's enum value stays.
    v2 = {"label": "Support ticket", "note": {"type": "integer"}, "topic": {"type": "text"}}
    assert deploy_objects(account, ticket_recipe(**v2)) == ["ticket"]
    otype = account.store.schema.types["ticket"]
    assert otype.label == "Support ticket"
    assert otype.fields["note"].type == "integer" and "topic" in otype.fields
    assert field_values(account, "ticket", "level") == ("a", "b", "c")
    assert field_values(account, "order", "channel") == ("web", "shop", "phone")
    assert data(account, ticket) == {"level": "c", "note": 5}

    # The recipe changes the field the admin changed: the recipe's version wins, through the
    # same checks (refused while an object holds a value it drops; nothing is recorded then).
    v3 = {**v2, "levels": ("a", "b", "d")}
    message = refused(account, lambda: account.deploy_objects(ticket_recipe(**v3)))
    assert message == (
        f"ticket.level: the value of {ticket} cannot become enum: 'c' is not one of a, b, d"
    )
    assert field_values(account, "ticket", "level") == ("a", "b", "c")
    assert deploy_objects(account, ticket_recipe(**v2)) == []  # v2 is still the last deploy
    do(account, lambda: account.update_object(ticket, {"level": "b"}))
    assert deploy_objects(account, ticket_recipe(**v3)) == ["ticket"]
    assert field_values(account, "ticket", "level") == ("a", "b", "d")
    assert field_values(account, "order", "channel") == ("web", "shop", "phone")

    # A field the recipe no longer declares stays as it is (deploys never remove fields),
    # an admin's change to it included.
    admin_change(account, "ticket", topic={"type": "string"})
    deploy_objects(account, ticket_recipe(**{**v3, "topic": None}))
    assert account.store.schema.types["ticket"].fields["topic"].type == "string"
    assert account.store.schema.types["ticket"].fields["note"].type == "integer"
    again = Account(opened.open(), NOW)
    assert again.store.schema.types["ticket"].fields["topic"].type == "string"
    assert field_values(again, "ticket", "level") == ("a", "b", "d")


def test_a_first_deploy_applies_every_declared_field(account: Account) -> None:
    """No declaration recorded yet (a first deploy, or a database deployed before they were
    recorded): the recipe's fields replace the stored ones, as before."""
    spec = {"label": "Ticket", "fields": {"level": LEVELS_ABC, "note": {"type": "text"}}}
    do(account, lambda: account.define_type("ticket", {**spec, "stages": ["open", "closed"]}))
    ticket = do(account, lambda: account.create_object("ticket", {"level": "c", "note": "n"}))
    message = refused(account, lambda: account.deploy_objects(ticket_recipe()))
    assert (
        message == f"ticket.level: the value of {ticket} cannot become enum: 'c' is not one of a, b"
    )
    do(account, lambda: account.update_object(ticket, {"level": "a"}))
    assert sorted(deploy_objects(account, ticket_recipe())) == ["order", "ticket"]
    otype = account.store.schema.types["ticket"]
    assert otype.fields["level"].values == ("a", "b")
    assert otype.fields["note"].type == "string"
    assert otype.stages == ("open", "closed")  # the recipe declares none: kept
    assert data(account, ticket) == {"level": "a", "note": "n", "stage": "open"}
    # From now on the declaration is recorded: an admin's change survives a redeploy.
    admin_change(account, "ticket", level=LEVELS_ABC)
    assert deploy_objects(account, ticket_recipe()) == []
    assert field_values(account, "ticket", "level") == ("a", "b", "c")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_flowlane_deploy_of_the_same_recipe_keeps_an_admins_enum_value(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Through ``flowlane deploy``: a store opened with the recipe's types, deployed again."""
    url = (
        f"sqlite:///{tmp_path}/k.db" if kind == "sqlite" else request.getfixturevalue("pg_database")
    )
    objects = "types:\n  lead:\n    fields:\n      source: {type: enum, values: [ads, web]}\n"
    root = write_recipe(tmp_path / "r", {}, objects=objects)

    def deployed() -> Account:
        recipe = load_valid_recipe(root)
        store = open_durable(recipe, url)
        try:
            deploy(recipe, store)
        except BaseException:
            store.close()
            raise
        return Account(store, NOW)

    first = deployed()
    source = {"type": "enum", "values": ["ads", "web", "referral"]}
    admin_change(first, "lead", source=source)
    lead = do(first, lambda: first.create_object("lead", {"source": "referral"}))
    first.store.close()
    second = deployed()
    try:
        assert field_values(second, "lead", "source") == ("ads", "web", "referral")
        assert data(second, lead) == {"source": "referral"}
    finally:
        second.store.close()
