"""S2's administration flows end to end (recipe ``launches``), through the HTTP API of a live
server: a process that must be approved starts nothing until the owner approves it; then a
cancelled order launches it, its task is reassigned in bulk, and a restart cancels the
running instances, deletes their tasks and leaves the process stopped. A change that fires
another process of the recipe sends its email to the real SMTP server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from tests.live import Live
from tests.smtp_sink import SmtpSink

KEY = "refund-approval"


def _order(api: httpx.Client, oid: str, manager: str, client: str) -> None:
    data = {"number": oid.upper(), "status": "new", "client": client, "manager": manager}
    made = api.post("/objects", json={"type": "order", "id": oid, "data": data})
    assert made.status_code == 201, made.text


def _set(api: httpx.Client, oid: str, status: str) -> None:
    changed = api.patch(f"/objects/{oid}", json={"set": {"status": status}})
    assert changed.status_code == 200, changed.text


def _tasks(api: httpx.Client) -> list[dict[str, Any]]:
    found = api.get("/tasks", params={"process": KEY, "open": True})
    assert found.status_code == 200, found.text
    items: list[dict[str, Any]] = found.json()["items"]
    return items


def test_approval_launch_reassignment_and_restart(
    live_server: Callable[..., Live], smtp: SmtpSink
) -> None:
    live = live_server("launches")
    manager, admin, client = live.users["manager"], live.users["admin"], live.users["client"]
    with live.api("owner") as owner, live.api("manager") as api:
        info = owner.get(f"/processes/{KEY}").json()
        assert (info["approval"], info["approved"]) == (True, False)
        _order(owner, "o1", manager, client)
        refused = api.post(f"/processes/{KEY}/start", json={"object": "o1"})
        assert refused.status_code == 409, refused.text
        assert "must be approved" in refused.json()["detail"]
        _set(owner, "o1", "cancelled")
        live.work()
        assert _tasks(owner) == []  # the launch waits for the approval too
        not_allowed = api.post(f"/processes/{KEY}/approve")
        assert not_allowed.status_code == 403, not_allowed.text
        approved = owner.post(f"/processes/{KEY}/approve")
        assert approved.status_code == 200 and approved.json()["approved"] is True

        # approved: a cancelled order enters; its manager gets the refund question
        _order(owner, "o2", manager, client)
        _set(owner, "o2", "in_work")  # another process of the recipe tells the manager
        _set(owner, "o2", "cancelled")
        live.work()
        [task] = _tasks(owner)
        assert (task["object_id"], task["assignee"]) == ("o2", manager)
        assert task["title"] == "Refund order O2?"
        assert smtp.wait_for(1, timeout=10)
        [mail] = smtp.messages
        assert (mail["To"], mail["Subject"]) == ("manager@example.com", "Order O2 is in work")

        # the manager is away: the owner gives the manager's open tasks to the admin
        moved = owner.post(f"/processes/{KEY}/reassign", json={"from": manager, "to": admin})
        assert moved.status_code == 200 and moved.json() == {"count": 1}, moved.text
        assert [t["assignee"] for t in _tasks(owner)] == [admin]
        denied = api.post(f"/processes/{KEY}/reassign", json={"to": manager})
        assert denied.status_code == 403, denied.text

        # restart: the running instance is cancelled, its task deleted, the process stopped
        running = owner.get("/instances", params={"process": KEY, "status": "running"}).json()
        [iid] = [i["id"] for i in running["items"]]
        done = owner.post(f"/processes/{KEY}/restart")
        assert done.status_code == 200, done.text
        assert done.json() == {"cancelled": [iid], "deleted_tasks": [task["id"]]}
        assert _tasks(owner) == []
        assert owner.get(f"/processes/{KEY}").json()["status"] == "stopped"
        stopped = api.post(f"/processes/{KEY}/start", json={"object": "o2"})
        assert stopped.status_code == 409, stopped.text
        found = owner.get("/instances", params={"process": KEY, "object": "o2"}).json()
        assert [i["status"] for i in found["items"]] == ["cancelled"]
