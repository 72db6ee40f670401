"""The instances API: list with filters, one instance, its trace, open incidents, retry and
cancel — main paths and refusals (role, missing, bad input)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from tests.api.conftest import API
from tests.api.helpers import ON_BOTH, problem

Headers = Callable[[str], dict[str, str]]

BOOM = """\
key: boom
name: Boom
object: user
variables:
  n: {type: number}
  api_key: {type: string}
blocks:
  start: {type: start, next: calc}
  calc: {type: operation, set: {name: "={{ 1 / vars.n }}"}, next: done}
  done: {type: end, outcome: positive}
"""


def _start(client: TestClient, headers: Headers, process: str, **vars_: Any) -> str:
    r = client.post(
        f"{API}/processes/{process}/start",
        json={"object": "client", "vars": vars_},
        headers=headers("owner"),
    )
    assert r.status_code == 201, r.text
    iid: str = r.json()["instance_id"]
    return iid


def _incident(client: TestClient, headers: Headers) -> str:
    r = client.post(
        f"{API}/processes", content=BOOM, headers={**headers("owner"), "Content-Type": "text/yaml"}
    )
    assert r.status_code == 201, r.text
    return _start(client, headers, "boom", n=0, api_key="sk-123")


@ON_BOTH
def test_list_get_and_trace(client: TestClient, headers: Headers) -> None:
    first = _start(client, headers, "homework", topic="Sales", homework="Read")
    second = _start(client, headers, "homework-review")
    r = client.get(f"{API}/instances", headers=headers("employee_plain"))
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["items"]] == [second, first]
    assert r.json()["total"] == 2
    r = client.get(f"{API}/instances?process=homework&status=running", headers=headers("manager"))
    assert [i["id"] for i in r.json()["items"]] == [first]
    r = client.get(f"{API}/instances?object=client&size=1&page=2", headers=headers("manager"))
    assert ([i["id"] for i in r.json()["items"]], r.json()["total"]) == ([first], 2)
    r = client.get(f"{API}/instances?status=ended", headers=headers("manager"))
    assert r.json()["total"] == 0
    one = client.get(f"{API}/instances/{first}", headers=headers("manager")).json()
    assert one["status"] == "running"
    assert one["vars"]["topic"] == "Sales"
    assert one["tokens"] == [
        {"token": one["tokens"][0]["token"], "block": "homework", "waits_for": "task"}
    ]
    r = client.get(f"{API}/instances/{first}/trace?size=2", headers=headers("manager"))
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] > 2 and len(page["items"]) == 2
    assert page["items"][0]["event"] == "instance_started"
    assert all(line["instance"] == first for line in page["items"])
    problem(client.get(f"{API}/instances", headers=headers("client")), 403, "forbidden")
    problem(client.get(f"{API}/instances/{first}", headers=headers("client")), 403)
    problem(client.get(f"{API}/instances/{first}/trace", headers=headers("client")), 403)
    problem(client.get(f"{API}/instances/nope", headers=headers("owner")), 404)
    problem(client.get(f"{API}/instances/nope/trace", headers=headers("owner")), 404)
    problem(client.get(f"{API}/instances?status=odd", headers=headers("owner")), 422)


def test_incidents_retry_and_secrets(client: TestClient, headers: Headers, store: Any) -> None:
    iid = _incident(client, headers)
    one = client.get(f"{API}/instances/{iid}", headers=headers("owner")).json()
    assert one["status"] == "incident"
    assert one["vars"]["api_key"] == "***"
    assert one["vars"]["n"] == 0
    assert one["tokens"][0]["block"] == "calc"
    r = client.get(f"{API}/incidents", headers=headers("employee_plain"))
    assert r.status_code == 200, r.text
    (incident,) = r.json()["items"]
    assert (incident["instance_id"], incident["process"], incident["block"]) == (
        iid,
        "boom",
        "calc",
    )
    assert (
        client.get(f"{API}/incidents?process=homework", headers=headers("owner")).json()["total"]
        == 0
    )
    problem(client.get(f"{API}/incidents", headers=headers("client")), 403)
    problem(client.post(f"{API}/instances/{iid}/retry", headers=headers("manager")), 403)
    assert len(store.incidents(open_only=True)) == 1
    r = client.post(f"{API}/instances/{iid}/retry", headers=headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "incident"  # the same division fails again: a new incident
    incidents = store.incidents()
    assert [i.resolved for i in incidents] == [True, False]
    events = [
        line["event"]
        for line in client.get(f"{API}/instances/{iid}/trace", headers=headers("owner")).json()[
            "items"
        ]
    ]
    assert events.count("incident") == 2
    problem(client.post(f"{API}/instances/nope/retry", headers=headers("admin")), 404)
    running = _start(client, headers, "homework-review")
    problem(client.post(f"{API}/instances/{running}/retry", headers=headers("admin")), 409)


def test_cancel(client: TestClient, headers: Headers, store: Any) -> None:
    iid = _start(client, headers, "homework-review")
    problem(client.post(f"{API}/instances/{iid}/cancel", headers=headers("manager")), 403)
    assert store.get_instance(iid).status == "running"
    r = client.post(f"{API}/instances/{iid}/cancel", headers=headers("owner"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert store.get_instance(iid).status == "cancelled"
    problem(client.post(f"{API}/instances/{iid}/cancel", headers=headers("owner")), 409)
    problem(client.post(f"{API}/instances/nope/cancel", headers=headers("owner")), 404)
