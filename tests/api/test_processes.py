"""The processes API: list, info, versions, validate, deploy, lifecycle, starts, templates,
migration — each endpoint's main path and its refusals (role, missing, bad input)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from tests.api.conftest import API
from tests.api.helpers import ON_BOTH, problem

from flowlane.services.account import Account

Headers = Callable[[str], dict[str, str]]

HELLO = """\
key: hello
name: Hello world
object: user
tags: [demo]
variables:
  topic: {type: string}
blocks:
  start: {type: start, next: ask}
  ask: {type: task, title: "Say hello", assign: "=object", wait: true, next: done}
  done: {type: end, outcome: positive}
"""

APPROVED = """\
key: guarded
name: Guarded
object: user
launch: {on: manual, approval: true}
blocks:
  start: {type: start, next: done}
  done: {type: end, outcome: positive}
"""

TEMPLATE = """\
key: greeting-template
name: Greeting template
object: user
template: true
blocks:
  start: {type: start, next: done}
  done: {type: end, outcome: positive}
"""

YAML = {"Content-Type": "text/yaml"}


def _deploy(client: TestClient, headers: Headers, text: str, role: str = "owner") -> Any:
    r = client.post(f"{API}/processes", content=text, headers={**headers(role), **YAML})
    assert r.status_code == 201, r.text
    return r.json()


def test_list_and_get(client: TestClient, headers: Headers) -> None:
    r = client.get(f"{API}/processes", headers=headers("employee_plain"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["key"] for p in body["items"]] == ["homework", "homework-review"]
    assert body["total"] == 2
    r = client.get(f"{API}/processes?search=review&size=1", headers=headers("manager"))
    assert [p["key"] for p in r.json()["items"]] == ["homework-review"]
    _deploy(client, headers, HELLO)
    r = client.get(f"{API}/processes?tag=demo", headers=headers("manager"))
    assert [p["key"] for p in r.json()["items"]] == ["hello"]
    info = client.get(f"{API}/processes/homework", headers=headers("admin")).json()
    assert info["object"] == "user"
    assert info["status"] == "active"
    assert info["launch"] == "manual"
    assert info["version"] == 1
    assert info["approval"] is False
    assert info["last_launch"] is None
    problem(client.get(f"{API}/processes", headers=headers("client")), 403, "forbidden")
    problem(client.get(f"{API}/processes/nope", headers=headers("owner")), 404, "not_found")
    problem(client.get(f"{API}/processes"), 401)
    problem(client.get(f"{API}/processes?page=0", headers=headers("owner")), 422)


def test_validate_lists_problems_and_changes_nothing(client: TestClient, headers: Headers) -> None:
    ok = client.post(
        f"{API}/processes/validate", content=HELLO, headers={**headers("manager"), **YAML}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"valid": True, "problems": []}
    bad = HELLO.replace("next: done}", "next: nowhere}").replace("object: user", "object: boat")
    r = client.post(f"{API}/processes/validate", json={"source": bad}, headers=headers("owner"))
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["valid"] is False
    assert any("boat" in p["message"] for p in found["problems"])
    assert any(p["block"] == "ask" and "nowhere" in p["message"] for p in found["problems"])
    assert all(p["file"] == "process.yaml" for p in found["problems"])
    for garbage in ("", "[[[", "a: [", "- 1\n- 2", "key: 1", "\x00", "[" * 5000, "{a: {b: ]}"):
        r = client.post(
            f"{API}/processes/validate",
            content=garbage.encode(),
            headers={**headers("owner"), **YAML},
        )
        assert r.status_code == 200, (garbage[:20], r.text)
        assert r.json()["valid"] is False
    r = client.post(
        f"{API}/processes/validate", content=b"\xff\xfe", headers={**headers("owner"), **YAML}
    )
    assert problem(r, 422)["fields"]["field"] == "source"
    problem(
        client.post(f"{API}/processes/validate", json={"text": "x"}, headers=headers("owner")), 422
    )
    problem(
        client.post(
            f"{API}/processes/validate",
            content=b"x",
            headers={**headers("owner"), "Content-Type": "image/png"},
        ),
        415,
    )
    problem(
        client.post(
            f"{API}/processes/validate", content=HELLO, headers={**headers("client"), **YAML}
        ),
        403,
        "forbidden",
    )
    assert client.get(f"{API}/processes/hello", headers=headers("owner")).status_code == 404


@ON_BOTH
def test_deploy_versions_and_source(client: TestClient, headers: Headers) -> None:
    first = _deploy(client, headers, HELLO, role="admin")
    assert first == {"key": "hello", "version": 1, "created": True}
    assert _deploy(client, headers, HELLO) == {"key": "hello", "version": 1, "created": False}
    changed = HELLO.replace("Say hello", "Say hello again")
    assert _deploy(client, headers, changed)["version"] == 2
    versions = client.get(f"{API}/processes/hello/versions", headers=headers("manager")).json()
    assert [(v["version"], v["current"]) for v in versions] == [(1, False), (2, True)]
    assert all(v["deployed_at"] and v["running"] == 0 for v in versions)
    r = client.post(
        f"{API}/processes/hello/start", json={"object": "client"}, headers=headers("manager")
    )
    assert r.status_code == 201, r.text
    versions = client.get(f"{API}/processes/hello/versions", headers=headers("manager")).json()
    assert versions[1]["instances"] == {"running": 1}
    assert versions[1]["running"] == 1
    one = client.get(f"{API}/processes/hello/versions/1", headers=headers("employee")).json()
    assert one["spec"]["blocks"]["ask"]["title"] == "Say hello"
    assert "title: Say hello\n" in one["yaml"]
    assert one["current"] is False
    problem(client.get(f"{API}/processes/hello/versions/3", headers=headers("owner")), 404)
    problem(client.get(f"{API}/processes/hello/versions/0", headers=headers("owner")), 422)


def test_deploy_refusals(client: TestClient, headers: Headers) -> None:
    r = client.post(f"{API}/processes", content=HELLO, headers={**headers("manager"), **YAML})
    problem(r, 403, "forbidden")
    broken = HELLO.replace("next: done}", "next: nowhere}")
    body = problem(
        client.post(f"{API}/processes", json={"source": broken}, headers=headers("owner")), 422
    )
    assert "nowhere" in body["detail"]
    assert body["fields"]["problems"][0]["block"] == "ask"
    problem(client.post(f"{API}/processes", content="[", headers={**headers("owner"), **YAML}), 422)
    assert client.get(f"{API}/processes/hello", headers=headers("owner")).status_code == 404
    # an approved process that runs is refused until stopped
    _deploy(client, headers, APPROVED)
    assert (
        client.post(f"{API}/processes/guarded/approve", headers=headers("owner")).status_code == 200
    )
    changed = APPROVED.replace("Guarded", "Guarded again")
    r = client.post(f"{API}/processes", content=changed, headers={**headers("owner"), **YAML})
    assert "stop it" in problem(r, 409)["detail"]
    assert client.post(f"{API}/processes/guarded/stop", headers=headers("owner")).status_code == 200
    assert _deploy(client, headers, changed)["version"] == 2


def test_lifecycle(client: TestClient, headers: Headers) -> None:
    _deploy(client, headers, APPROVED)
    info = client.get(f"{API}/processes/guarded", headers=headers("owner")).json()
    assert (info["approval"], info["approved"]) == (True, False)
    r = client.post(
        f"{API}/processes/guarded/start", json={"object": "client"}, headers=headers("owner")
    )
    assert "approved" in problem(r, 409)["detail"]
    problem(client.post(f"{API}/processes/guarded/approve", headers=headers("manager")), 403)
    r = client.post(f"{API}/processes/guarded/approve", headers=headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["approved"] is True
    problem(client.post(f"{API}/processes/guarded/approve", headers=headers("admin")), 409)
    problem(client.post(f"{API}/processes/homework/approve", headers=headers("admin")), 409)
    problem(client.post(f"{API}/processes/nope/approve", headers=headers("admin")), 404)
    problem(client.post(f"{API}/processes/guarded/stop", headers=headers("employee")), 403)
    r = client.post(f"{API}/processes/guarded/stop", headers=headers("owner"))
    assert r.json()["status"] == "stopped"
    problem(client.post(f"{API}/processes/guarded/stop", headers=headers("owner")), 409)
    r = client.post(
        f"{API}/processes/guarded/start", json={"object": "client"}, headers=headers("owner")
    )
    assert "stopped" in problem(r, 409)["detail"]
    problem(client.post(f"{API}/processes/guarded/activate", headers=headers("manager")), 403)
    r = client.post(f"{API}/processes/guarded/activate", headers=headers("owner"))
    assert r.json()["status"] == "active"
    problem(client.post(f"{API}/processes/guarded/activate", headers=headers("owner")), 409)


def test_restart_returns_what_it_deleted(client: TestClient, headers: Headers) -> None:
    _deploy(client, headers, HELLO)
    started = client.post(
        f"{API}/processes/hello/start", json={"object": "client"}, headers=headers("owner")
    ).json()["instance_id"]
    problem(client.post(f"{API}/processes/hello/restart", headers=headers("manager")), 403)
    r = client.post(f"{API}/processes/hello/restart", headers=headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["cancelled"] == [started]
    assert len(r.json()["deleted_tasks"]) == 1
    info = client.get(f"{API}/processes/hello", headers=headers("owner")).json()
    assert info["status"] == "stopped"
    assert info["last_launch"] is not None
    problem(client.post(f"{API}/processes/nope/restart", headers=headers("admin")), 404)


def test_start(client: TestClient, headers: Headers, store: Any) -> None:
    url = f"{API}/processes/homework/start"
    body = {"object": "client", "vars": {"topic": "Sales", "homework": "Read"}}
    for role in ("client", "employee", "employee_plain"):
        problem(client.post(url, json=body, headers=headers(role)), 403, "forbidden")
    assert store.instances_of("homework") == []
    r = client.post(url, json=body, headers=headers("manager"))
    assert r.status_code == 201, r.text
    iid = r.json()["instance_id"]
    (state,) = store.instances_of("homework")
    assert state.id == iid and state.vars["topic"] == "Sales"
    problem(client.post(url, json={"object": "nobody"}, headers=headers("owner")), 404)
    r = client.post(url, json={"object": "client", "x": 1}, headers=headers("owner"))
    assert problem(r, 422)["fields"]["errors"][0]["loc"][-1] == "x"
    problem(client.post(f"{API}/processes/nope/start", json=body, headers=headers("owner")), 404)


def test_mass_start(client: TestClient, headers: Headers, store: Any) -> None:
    url = f"{API}/processes/homework-review/mass-start"
    problem(client.post(url, json={"all": True}, headers=headers("employee")), 403)
    assert store.instances_of("homework-review") == []
    r = client.post(url, json={"where": "object.role == 'client'"}, headers=headers("manager"))
    assert r.status_code == 201, r.text
    assert r.json()["count"] == 1
    r = client.post(
        url,
        json={"filter": {"field": "role", "value": "admin"}, "batch": 1},
        headers=headers("owner"),
    )
    assert r.json()["count"] == 1
    r = client.post(url, json={"all": True, "batch": 2}, headers=headers("owner"))
    assert r.json()["count"] == 6
    assert len(r.json()["started"]) == 6
    assert len(store.instances_of("homework-review")) == 8
    for bad in (
        {},
        {"all": True, "where": "true"},
        {"where": "object.role =="},
        {"filter": {"field": "role", "op": "nope"}},
        {"all": True, "batch": 0},
    ):
        problem(client.post(url, json=bad, headers=headers("owner")), 422)
    problem(
        client.post(
            f"{API}/processes/nope/mass-start", json={"all": True}, headers=headers("owner")
        ),
        404,
    )
    assert len(store.instances_of("homework-review")) == 8


def test_mass_start_is_bounded(
    client: TestClient, headers: Headers, store: Any, monkeypatch: Any
) -> None:
    from flowlane.api.routes import processes as routes

    monkeypatch.setattr(routes, "MASS_START_LIMIT", 3)
    r = client.post(
        f"{API}/processes/homework-review/mass-start", json={"all": True}, headers=headers("owner")
    )
    body = problem(r, 422)
    assert "CLI" in body["detail"]
    assert body["fields"] == {"matching": 6, "limit": 3}
    assert store.instances_of("homework-review") == []


def test_test_run_returns_the_trace(client: TestClient, headers: Headers) -> None:
    _deploy(client, headers, APPROVED)  # not approved: a test run starts all the same
    url = f"{API}/processes/guarded/test-run"
    problem(client.post(url, json={"object": "client"}, headers=headers("manager")), 403)
    r = client.post(url, json={"object": "client"}, headers=headers("admin"))
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "ended"
    events = [line["event"] for line in run["trace"]]
    assert events[0] == "instance_started" and "ended" in " ".join(events)
    problem(client.post(url, json={"object": "nobody"}, headers=headers("admin")), 404)
    problem(client.post(url, json={}, headers=headers("admin")), 422)


def test_forecast_and_templates(client: TestClient, headers: Headers) -> None:
    r = client.get(f"{API}/processes/homework/forecast", headers=headers("manager"))
    assert r.status_code == 200, r.text
    assert r.json()["process"] == "homework"
    assert r.json()["launch"] == "manual"
    assert r.json()["objects"] >= 0
    problem(client.get(f"{API}/processes/homework/forecast", headers=headers("client")), 403)
    _deploy(client, headers, TEMPLATE)
    found = client.get(f"{API}/processes/homework/templates", headers=headers("manager")).json()
    assert [p["key"] for p in found] == ["greeting-template"]
    problem(client.get(f"{API}/processes/nope/templates", headers=headers("manager")), 404)


def test_migrate(
    client: TestClient, headers: Headers, account: Callable[[], Account], store: Any
) -> None:
    _deploy(client, headers, HELLO)
    iid = client.post(
        f"{API}/processes/hello/start", json={"object": "client"}, headers=headers("owner")
    ).json()["instance_id"]
    renamed = HELLO.replace("next: ask}", "next: greet}").replace("  ask:", "  greet:")
    _deploy(client, headers, renamed)
    url = f"{API}/processes/hello/migrate"
    body = {"from_version": 1, "to_version": 2, "map": {"ask": "greet"}}
    problem(client.post(url, json=body, headers=headers("manager")), 403)
    problem(client.post(url, json={**body, "to_version": 9}, headers=headers("owner")), 404)
    r = client.post(url, json={"to_version": 2}, headers=headers("owner"))
    assert "greet" in problem(r, 409)["detail"] or "ask" in r.json()["detail"]
    r = client.post(url, json=body, headers=headers("owner"))
    assert r.status_code == 200, r.text
    assert r.json() == {"migrated": [iid]}
    state = store.get_instance(iid)
    assert state.version == 2
    assert [t.block for t in state.tokens] == ["greet"]
