"""Object types, dictionaries, objects (lists, search, cards, changes, stage moves), kanban."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.api.conftest import API, Seeded, seed
from tests.api.helpers import ON_BOTH, problem

from flowlane.runtime.durable import load_valid_recipe, open_durable
from flowlane.services.account import Account
from flowlane.store.sql.store import SqlStore

Headers = Callable[[str], dict[str, str]]
MakeAccount = Callable[[], Account]

OBJECTS = """
types:
  event:
    label: Event
    stages: [new, preparation, registration]
    success: held
    failure: cancelled
    fields:
      title: {type: string, label: Title}
      kind: {type: link, to: dictionary:event_type}
      address: {type: string}
      day: {type: date}
      client: {type: link, to: user}
      responsible: {type: link, to: user}
      notes: {type: text}
      secret: {type: password}
dictionaries:
  event_type: [offline, online]
"""

GUARD = """
key: guard
name: readiness guard
object: event
launch: {on: stage, stage: registration, repeat: true}
blocks:
  start: {type: start, next: ready}
  ready:
    type: condition
    branches: [{if: "object.address", next: null}]
    else: back
  back:
    type: operation
    name: Back to preparation
    stage: preparation
    reason: "{{ object.kind }} event without an address"
"""

PREP = """
key: prep
name: preparation task
object: event
launch: {on: stage, stage: preparation}
blocks:
  start: {type: start, next: todo}
  todo: {type: task, title: Prepare, assign: "=object.responsible"}
"""


def _write_recipe(root: Path) -> Path:
    (root / "processes").mkdir(parents=True)
    (root / "recipe.yaml").write_text("key: events\nname: events\n")
    (root / "objects.yaml").write_text(textwrap.dedent(OBJECTS))
    for key, text in (("guard", GUARD), ("prep", PREP)):
        (root / "processes" / f"{key}.yaml").write_text(textwrap.dedent(text))
    return root


@pytest.fixture(scope="session")
def _events_recipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_recipe(tmp_path_factory.mktemp("events-recipe") / "recipe")


@pytest.fixture(scope="session")
def _events_sqlite(
    tmp_path_factory: pytest.TempPathFactory, _events_recipe: Path
) -> tuple[Path, Seeded]:
    path = tmp_path_factory.mktemp("events-seed") / "seed.db"
    return path, seed(f"sqlite:///{path}", _events_recipe)


@pytest.fixture
def seeded(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    _events_sqlite: tuple[Path, Seeded],
    _events_recipe: Path,
) -> Seeded:
    """This module's database: the events recipe and the users of every role."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return seed(request.getfixturevalue("pg_database"), _events_recipe)
    source, template = _events_sqlite
    path = tmp_path / "api.db"
    shutil.copyfile(source, path)
    return Seeded(f"sqlite:///{path}", template.users, template.tokens)


@pytest.fixture
def store(seeded: Seeded, _events_recipe: Path) -> Iterator[SqlStore]:
    opened = open_durable(load_valid_recipe(_events_recipe), seeded.url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def events(account: MakeAccount, users: dict[str, str]) -> list[str]:
    """Five events: e1..e3 of the client (e1 and e2 new, e3 in preparation), e4 and e5 of
    nobody (e5 cancelled)."""
    acc = account()

    def make() -> None:
        for n in range(1, 6):
            data: dict[str, Any] = {
                "title": f"Event {n}",
                "kind": "online" if n % 2 else "offline",
                "day": f"2026-04-0{n}",
                "responsible": users["manager"],
                "secret": "s3cret",
                "notes": "long text",
            }
            if n <= 3:
                data["client"] = users["client"]
            if n == 3:
                data["stage"] = "preparation"
            if n == 5:
                data["stage"] = "cancelled"
            acc.create_object("event", data, object_id=f"e{n}")

    acc.attempt(make)
    return [f"e{n}" for n in range(1, 6)]


def _stored(account: MakeAccount, object_id: str) -> dict[str, Any] | None:
    acc = account()
    with acc.store.transaction():
        rec = acc.store.get_object(object_id)
    return None if rec is None else dict(rec.data)


# ---- object types and dictionaries -----------------------------------------------------------


def test_object_types_list_and_one_type(client: TestClient, headers: Headers) -> None:
    r = client.get(f"{API}/object-types", headers=headers("client"))
    assert r.status_code == 200, r.text
    keys = [t["key"] for t in r.json()]
    assert keys == sorted(keys) and {"event", "user", "order"} <= set(keys)
    r = client.get(f"{API}/object-types/event", headers=headers("employee_plain"))
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["stages"] == ["new", "preparation", "registration"]
    assert t["final_stages"] == ["held", "cancelled"]
    assert (t["success"], t["failure"], t["builtin"]) == ("held", "cancelled", False)
    assert {(x["field"], x["to"], x["many"]) for x in t["links"]} == {
        ("kind", "dictionary:event_type", False),
        ("client", "user", False),
        ("responsible", "user", False),
    }
    fields = {f["name"]: f for f in t["fields"]}
    assert fields["secret"]["write_only"] is True and fields["title"]["label"] == "Title"
    assert t["card_fields"] == ["title", "address", "client", "day"]
    problem(client.get(f"{API}/object-types/nope", headers=headers("owner")), 404, "not_found")
    problem(client.get(f"{API}/object-types"), 401, "unauthorized")


LEAD = {
    "label": "Lead",
    "stages": ["new", "contacted"],
    "success": "won",
    "fields": {"name": {"type": "string"}, "client": {"type": "link", "to": "user"}},
}


def test_define_a_type(client: TestClient, headers: Headers) -> None:
    body = {"key": "lead", "spec": LEAD}
    problem(client.post(f"{API}/object-types", json=body, headers=headers("manager")), 403)
    problem(client.get(f"{API}/object-types/lead", headers=headers("owner")), 404)
    r = client.post(f"{API}/object-types", json=body, headers=headers("admin"))
    assert r.status_code == 201, r.text
    assert r.json()["final_stages"] == ["won"]
    assert client.get(f"{API}/object-types/lead", headers=headers("client")).status_code == 200
    problem(client.post(f"{API}/object-types", json=body, headers=headers("owner")), 409)
    bad = {"key": "bad", "spec": {"fields": {"x": {"type": "nope"}}}}
    p = problem(client.post(f"{API}/object-types", json=bad, headers=headers("owner")), 422)
    assert "spec.fields.x.type" in p["detail"]
    dangling = {"key": "bad", "spec": {"fields": {"x": {"type": "link", "to": "nowhere"}}}}
    p = problem(client.post(f"{API}/object-types", json=dangling, headers=headers("owner")), 409)
    assert "nowhere" in p["detail"]
    problem(client.get(f"{API}/object-types/bad", headers=headers("owner")), 404)


def test_change_a_type_converts_or_refuses(
    client: TestClient, headers: Headers, events: list[str], account: MakeAccount
) -> None:
    r = client.get(f"{API}/object-types/event", headers=headers("owner"))
    fields = {f["name"]: f for f in r.json()["fields"]}
    assert "address" in fields
    spec = {
        "label": "Event",
        "stages": ["new", "preparation", "registration"],
        "success": "held",
        "failure": "cancelled",
        "fields": {
            "title": {"type": "string"},
            "kind": {"type": "link", "to": "dictionary:event_type"},
            "day": {"type": "date"},
            "client": {"type": "link", "to": "user"},
            "responsible": {"type": "link", "to": "user"},
            "notes": {"type": "text"},
            "secret": {"type": "password"},
            "seats": {"type": "integer"},
        },
    }
    put = f"{API}/object-types/event"
    problem(client.put(put, json={"spec": spec}, headers=headers("manager")), 403, "forbidden")
    # "address" has no values yet: dropping it and adding "seats" is accepted
    r = client.put(put, json={"spec": spec}, headers=headers("admin"))
    assert r.status_code == 200, r.text
    assert "seats" in {f["name"] for f in r.json()["fields"]}
    # removing "day" that objects hold is refused, naming an object; nothing changes
    without_day = {**spec, "fields": {k: v for k, v in spec["fields"].items() if k != "day"}}
    p = problem(client.put(put, json={"spec": without_day}, headers=headers("owner")), 409)
    assert "event.day" in p["detail"] and "e1" in p["detail"]
    assert _stored(account, "e1")["day"] is not None  # type: ignore[index]
    body = {"spec": without_day, "drop_fields": ["day"]}
    assert client.put(put, json=body, headers=headers("owner")).status_code == 200
    assert "day" not in _stored(account, "e1")  # type: ignore[operator]
    problem(client.put(f"{API}/object-types/nope", json=body, headers=headers("owner")), 404)
    p = problem(client.put(put, json={"spec": spec, "x": 1}, headers=headers("owner")), 422)
    assert "x" in p["detail"]


def test_dictionaries(client: TestClient, headers: Headers) -> None:
    r = client.get(f"{API}/dictionaries", headers=headers("client"))
    assert r.json() == [{"key": "event_type", "values": ["offline", "online"]}]
    r = client.get(f"{API}/dictionaries/event_type", headers=headers("manager"))
    assert r.json() == {"key": "event_type", "values": ["offline", "online"]}
    problem(client.get(f"{API}/dictionaries/nope", headers=headers("manager")), 404)
    values = f"{API}/dictionaries/event_type/values"
    problem(client.post(values, json={"value": "hybrid"}, headers=headers("manager")), 403)
    r = client.get(f"{API}/dictionaries/event_type", headers=headers("manager"))
    assert r.json()["values"] == ["offline", "online"]
    r = client.post(values, json={"value": "hybrid"}, headers=headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["values"] == ["offline", "online", "hybrid"]
    assert client.post(values, json={"value": "hybrid"}, headers=headers("admin")).json() == {
        "key": "event_type",
        "values": ["offline", "online", "hybrid"],
    }
    p = problem(client.post(values, json={"value": ""}, headers=headers("admin")), 422)
    assert "value" in p["detail"]
    missing = f"{API}/dictionaries/nope/values"
    problem(client.post(missing, json={"value": "x"}, headers=headers("admin")), 404)
    new = {"key": "city", "values": ["Kazan", "Omsk"]}
    problem(client.post(f"{API}/dictionaries", json=new, headers=headers("manager")), 403)
    r = client.post(f"{API}/dictionaries", json=new, headers=headers("owner"))
    assert r.status_code == 201 and r.json() == new
    problem(client.post(f"{API}/dictionaries", json=new, headers=headers("owner")), 409)


# ---- lists -----------------------------------------------------------------------------------


def test_list_objects_filtered_sorted_paged(
    client: TestClient, headers: Headers, events: list[str], users: dict[str, str]
) -> None:
    r = client.get(f"{API}/objects", params={"type": "event"}, headers=headers("employee_plain"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 5 and [o["id"] for o in body["items"]] == events
    e1 = body["items"][0]
    assert e1["type"] == "event" and e1["stage"] == "new"
    assert e1["fields"]["day"] == "2026-04-01"
    assert e1["fields"]["client"] == users["client"]
    assert "secret" not in e1["fields"] and "stage" not in e1["fields"]
    params = {"type": "event", "where": "object.kind == 'online'", "sort": "-title", "size": 2}
    body = client.get(f"{API}/objects", params=params, headers=headers("manager")).json()
    assert body["total"] == 3 and [o["id"] for o in body["items"]] == ["e5", "e3"]
    body = client.get(
        f"{API}/objects", params={**params, "page": 2}, headers=headers("manager")
    ).json()
    assert [o["id"] for o in body["items"]] == ["e1"] and body["page"] == 2
    body = client.get(
        f"{API}/objects",
        params={"type": "event", "sort": "-id", "size": 2},
        headers=headers("owner"),
    ).json()
    assert [o["id"] for o in body["items"]] == ["e5", "e4"]
    bad = [
        ({"type": "event", "where": "object.nope ==="}, "where"),
        ({"type": "nope"}, "type"),
        ({"type": "event", "sort": "nope"}, "sort"),
        ({"type": "event", "sort": "secret"}, "sort"),
        ({"type": "event", "size": 0}, "size"),
    ]
    for query, field in bad:
        p = problem(client.get(f"{API}/objects", params=query, headers=headers("owner")), 422)
        assert field in p["detail"], (query, p)


def test_a_client_sees_only_objects_linked_to_them(
    client: TestClient, headers: Headers, events: list[str], users: dict[str, str]
) -> None:
    r = client.get(f"{API}/objects", params={"type": "event"}, headers=headers("client"))
    assert [o["id"] for o in r.json()["items"]] == ["e1", "e2", "e3"]
    assert r.json()["total"] == 3
    params = {"type": "event", "where": "object.kind == 'online'"}
    r = client.get(f"{API}/objects", params=params, headers=headers("client"))
    assert [o["id"] for o in r.json()["items"]] == ["e1", "e3"]
    r = client.get(f"{API}/objects", params={"type": "user"}, headers=headers("client"))
    assert [o["id"] for o in r.json()["items"]] == [users["client"]]
    assert "password" not in r.json()["items"][0]["fields"]
    r = client.get(f"{API}/objects", params={"type": "user"}, headers=headers("manager"))
    assert r.json()["total"] == 6
    r = client.get(f"{API}/objects", params={"type": "order"}, headers=headers("client"))
    assert r.json() == {"items": [], "total": 0, "page": 1, "size": 50}
    problem(client.get(f"{API}/objects/e4", headers=headers("client")), 404, "not_found")
    assert client.get(f"{API}/objects/e1", headers=headers("client")).status_code == 200


@ON_BOTH
def test_search_with_a_structured_filter(
    client: TestClient, headers: Headers, events: list[str]
) -> None:
    body = {
        "type": "event",
        "filter": {
            "all": [
                {"field": "day", "op": "ge", "value": "2026-04-02"},
                {"not": {"field": "stage", "op": "eq", "value": "cancelled"}},
            ]
        },
        "sort": "-day",
        "size": 10,
    }
    r = client.post(f"{API}/objects/search", json=body, headers=headers("manager"))
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 3
    assert [o["id"] for o in r.json()["items"]] == ["e4", "e3", "e2"]
    r = client.post(f"{API}/objects/search", json=body, headers=headers("client"))
    assert [o["id"] for o in r.json()["items"]] == ["e3", "e2"]
    wrong = {"type": "event", "filter": {"field": "nope", "op": "eq", "value": 1}}
    p = problem(client.post(f"{API}/objects/search", json=wrong, headers=headers("owner")), 422)
    assert "nope" in p["detail"] and p["fields"]["field"] == "where"
    wrong = {"type": "event", "filter": {"field": "day", "op": "near"}}
    p = problem(client.post(f"{API}/objects/search", json=wrong, headers=headers("owner")), 422)
    assert "filter" in p["detail"]


# ---- one object ------------------------------------------------------------------------------


def test_create_an_object(
    client: TestClient, headers: Headers, users: dict[str, str], account: MakeAccount
) -> None:
    body = {"type": "event", "id": "x1", "data": {"title": "New", "day": "2026-05-01"}}
    for role in ("client", "employee", "employee_plain"):
        problem(client.post(f"{API}/objects", json=body, headers=headers(role)), 403, "forbidden")
    assert _stored(account, "x1") is None
    r = client.post(f"{API}/objects", json=body, headers=headers("manager"))
    assert r.status_code == 201, r.text
    assert r.json() == {
        "id": "x1",
        "type": "event",
        "stage": "new",
        "fields": {"title": "New", "day": "2026-05-01"},
    }
    problem(client.post(f"{API}/objects", json=body, headers=headers("manager")), 409)
    r = client.post(
        f"{API}/objects", json={"type": "event", "data": {}}, headers=headers("manager")
    )
    assert r.status_code == 201 and r.json()["id"] != "x1"
    for data, field in (
        ({"day": "soon"}, "data.day"),
        ({"nope": 1}, "data.nope"),
        ({"client": "nobody"}, "data.client"),
        ({"stage": "nowhere"}, "data.stage"),
    ):
        p = problem(
            client.post(
                f"{API}/objects", json={"type": "event", "data": data}, headers=headers("manager")
            ),
            422,
        )
        assert p["fields"]["field"] == field and field in p["detail"], (data, p)
    p = problem(
        client.post(f"{API}/objects", json={"type": "nope"}, headers=headers("manager")), 422
    )
    assert p["fields"]["field"] == "type"
    # users follow the users' rules: a manager creates no user, an admin no owner
    user = {"type": "user", "id": "u9", "data": {"name": "U", "role": "owner"}}
    problem(client.post(f"{API}/objects", json=user, headers=headers("manager")), 403)
    problem(client.post(f"{API}/objects", json=user, headers=headers("admin")), 403)
    user["data"] = {"name": "U", "password": "pw pw pw pw"}
    r = client.post(f"{API}/objects", json=user, headers=headers("admin"))
    assert r.status_code == 201 and "password" not in r.json()["fields"]


def test_change_an_object(
    client: TestClient, headers: Headers, events: list[str], account: MakeAccount
) -> None:
    url = f"{API}/objects/e1"
    problem(client.patch(url, json={"set": {"address": "Main St"}}, headers=headers("client")), 403)
    problem(
        client.patch(f"{API}/objects/e4", json={"set": {"title": "x"}}, headers=headers("client")),
        404,
    )
    problem(client.patch(url, json={"set": {"title": "x"}}, headers=headers("employee_plain")), 403)
    assert _stored(account, "e1")["title"] == "Event 1"  # type: ignore[index]
    r = client.patch(
        url, json={"set": {"address": "Main St", "day": "2026-06-01"}}, headers=headers("manager")
    )
    assert r.status_code == 200, r.text
    assert r.json()["fields"]["address"] == "Main St"
    assert r.json()["fields"]["day"] == "2026-06-01"
    p = problem(client.patch(url, json={"set": {"stage": "held"}}, headers=headers("manager")), 422)
    assert "set.stage" in p["detail"]
    p = problem(client.patch(url, json={"set": {"day": "later"}}, headers=headers("manager")), 422)
    assert p["fields"]["field"] == "data.day"
    problem(client.patch(url, json={"title": "x"}, headers=headers("manager")), 422)
    problem(client.patch(f"{API}/objects/nope", json={"set": {}}, headers=headers("manager")), 404)
    assert _stored(account, "e1")["day"].isoformat() == "2026-06-01"  # type: ignore[index]


def test_stage_moves_and_the_card(
    client: TestClient,
    headers: Headers,
    events: list[str],
    users: dict[str, str],
    account: MakeAccount,
) -> None:
    url = f"{API}/objects/e1/stage"
    for role in ("employee", "client"):
        problem(client.post(url, json={"to": "preparation"}, headers=headers(role)), 403)
    assert _stored(account, "e1")["stage"] == "new"  # type: ignore[index]
    r = client.post(url, json={"to": "preparation"}, headers=headers("manager"))
    assert r.status_code == 200 and r.json() == {"moved": True, "stage": "preparation"}
    # the guard sends a move to registration back: 409 with its reason, the move undone
    p = problem(client.post(url, json={"to": "registration"}, headers=headers("manager")), 409)
    assert p["fields"] == {"stage": "preparation", "reason": "online event without an address"}
    assert "sent back" in p["detail"]
    assert _stored(account, "e1")["stage"] == "preparation"  # type: ignore[index]
    p = problem(client.post(url, json={"to": "nowhere"}, headers=headers("manager")), 409)
    assert "unknown stage 'nowhere'" in p["detail"]
    p = problem(
        client.post(f"{API}/objects/e5/stage", json={"to": "new"}, headers=headers("manager")), 409
    )
    assert "final" in p["detail"]
    problem(
        client.post(f"{API}/objects/nope/stage", json={"to": "new"}, headers=headers("owner")), 404
    )
    problem(client.post(url, json={}, headers=headers("owner")), 422)
    # the card: the preparation task, the instances (the guard's ended), the history
    r = client.get(f"{API}/objects/e1", headers=headers("employee_plain"))
    assert r.status_code == 200, r.text
    card = r.json()
    assert card["object"]["stage"] == "preparation"
    assert [(t["process"], t["title"], t["assignee"]) for t in card["tasks"]] == [
        ("prep", "Prepare", users["manager"])
    ]
    assert sorted(i["process"] for i in card["instances"]) == ["guard", "prep"]
    assert all(i["status"] in ("running", "ended") for i in card["instances"])
    assert card["history"] and all("event" in line for line in card["history"])
    # the client sees the card of their event, without instances or history
    card = client.get(f"{API}/objects/e1", headers=headers("client")).json()
    assert card["object"]["id"] == "e1" and card["instances"] == [] and card["history"] == []
    problem(client.get(f"{API}/objects/nope", headers=headers("owner")), 404)


# ---- kanban ----------------------------------------------------------------------------------


@ON_BOTH
def test_kanban_board_and_columns(client: TestClient, headers: Headers, events: list[str]) -> None:
    r = client.get(f"{API}/kanban/event", params={"per_column": 1}, headers=headers("manager"))
    assert r.status_code == 200, r.text
    board = r.json()
    assert board["card_fields"] == ["title", "address", "client", "day"]
    columns = [(c["stage"], c["final"], c["count"]) for c in board["columns"]]
    assert columns == [
        ("new", False, 3),
        ("preparation", False, 1),
        ("registration", False, 0),
        ("held", True, 0),
        ("cancelled", True, 1),
    ]
    new = board["columns"][0]["cards"]
    assert [c["id"] for c in new] == ["e1"]
    assert new[0]["fields"] == {"title": "Event 1", "client": "client", "day": "2026-04-01"}
    r = client.get(
        f"{API}/kanban/event/new", params={"page": 2, "size": 1}, headers=headers("manager")
    )
    assert r.json()["total"] == 3 and [c["id"] for c in r.json()["items"]] == ["e2"]
    params = {"where": "object.kind == 'offline'"}
    board = client.get(f"{API}/kanban/event", params=params, headers=headers("manager")).json()
    assert [c["count"] for c in board["columns"]] == [2, 0, 0, 0, 0]
    board = client.get(f"{API}/kanban/event", headers=headers("client")).json()
    assert [c["count"] for c in board["columns"]] == [2, 1, 0, 0, 0]
    problem(client.get(f"{API}/kanban/user", headers=headers("manager")), 409)
    problem(client.get(f"{API}/kanban/nope", headers=headers("manager")), 404)
    problem(client.get(f"{API}/kanban/event/nowhere", headers=headers("manager")), 404)
    p = problem(
        client.get(f"{API}/kanban/event", params={"where": "(("}, headers=headers("owner")), 422
    )
    assert "where" in p["detail"]
    problem(
        client.get(f"{API}/kanban/event", params={"per_column": 0}, headers=headers("owner")), 422
    )
