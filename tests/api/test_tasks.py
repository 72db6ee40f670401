"""Tasks over the API: inbox, task table, a task's page, claim, answer, status, comments,
attachments, history, variables, tasks by hand, reassignment, statistics, client tasks."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from tests.api.conftest import API
from tests.api.helpers import ON_BOTH, problem

from flowlane.services.account import Account

Headers = Callable[[str], dict[str, str]]
MakeAccount = Callable[[], Account]
PDF = b"%PDF-1.4\n% a tiny pdf\n"


def start(account: MakeAccount, process: str, object_id: str, **vars_: str) -> str:
    acc = account()
    out: list[str] = []
    acc.attempt(lambda: out.append(acc.start(process, object_id, vars_, by="owner")))
    acc.attempt(
        lambda: out.append(
            acc.open_task("review" if process.endswith("review") else "homework", object_id).id
        )
    )
    return out[-1]


def homework(account: MakeAccount, users: dict[str, str]) -> str:
    return start(account, "homework", users["client"], topic="Funnels", homework="Draw one")


def review(account: MakeAccount, users: dict[str, str]) -> str:
    return start(account, "homework-review", users["client"])


def task_of(client: TestClient, headers: Headers, role: str, task_id: str) -> dict:
    r = client.get(f"{API}/tasks/{task_id}", headers=headers(role))
    assert r.status_code == 200, r.text
    return r.json()


@ON_BOTH
def test_inbox_claim_and_answer(
    client: TestClient, headers: Headers, account: MakeAccount, users: dict[str, str]
) -> None:
    ids = [review(account, users)]
    acc = account()
    acc.attempt(lambda: acc.create_object("user", {"name": "Second"}, object_id="second"))
    ids.append(start(account, "homework-review", "second"))
    box = client.get(f"{API}/inbox", params={"size": 1}, headers=headers("manager"))
    assert box.status_code == 200, box.text
    assert box.json()["total"] == 2 and len(box.json()["items"]) == 1
    assert {t["id"] for t in box.json()["items"]} <= set(ids)
    claimed = client.post(f"{API}/tasks/{ids[0]}/claim", headers=headers("manager"))
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["assignee"] == users["manager"]
    mine = claimed.json()["workflow"]["transitions"]
    assert mine == [{"to": "done", "comment_required": False}]
    done = client.post(
        f"{API}/tasks/{ids[0]}/status", json={"to": "done"}, headers=headers("manager")
    )
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["closed"]) == ("done", True)
    assert done.json()["workflow"]["transitions"] == []
    again = client.post(
        f"{API}/tasks/{ids[0]}/status", json={"to": "done"}, headers=headers("manager")
    )
    problem(again, 409, "refused")
    left = client.get(f"{API}/inbox", headers=headers("manager")).json()
    assert [t["id"] for t in left["items"]] == [ids[1]] and left["total"] == 1


def test_claim_unclaim_and_refusals(
    client: TestClient, headers: Headers, account: MakeAccount, users: dict[str, str]
) -> None:
    task_id = review(account, users)
    url = f"{API}/tasks/{task_id}"
    problem(client.post(f"{url}/claim", headers=headers("employee_plain")), 403, "forbidden")
    problem(client.post(f"{url}/claim", headers=headers("employee")), 403, "forbidden")
    problem(client.post(f"{url}/claim", headers=headers("client")), 403, "forbidden")
    problem(client.get(url, headers=headers("client")), 403, "forbidden")
    assert task_of(client, headers, "admin", task_id)["assignee"] is None
    assert client.post(f"{url}/claim", headers=headers("manager")).status_code == 200
    problem(client.post(f"{url}/claim", headers=headers("admin")), 409, "refused")
    back = client.post(f"{url}/unclaim", headers=headers("manager"))
    assert back.status_code == 200 and back.json()["assignee"] is None
    problem(client.post(f"{API}/tasks/nope/claim", headers=headers("manager")), 404, "not_found")
    problem(client.get(f"{API}/tasks/nope", headers=headers("admin")), 404, "not_found")
    problem(client.post(f"{url}/claim"), 401, "unauthorized")


def hand_made(client: TestClient, headers: Headers, users: dict[str, str]) -> str:
    body = {"title": "Call Kira", "object": users["client"], "assignee": users["manager"]}
    made = client.post(
        f"{API}/processes/homework-review/tasks", json=body, headers=headers("admin")
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


@ON_BOTH
def test_answer_and_bad_input_naming_the_field(
    client: TestClient, headers: Headers, account: MakeAccount, users: dict[str, str]
) -> None:
    task_id = hand_made(client, headers, users)
    url = f"{API}/tasks/{task_id}/answer"
    body = problem(client.post(url, json={"fields": {"grade": 5}}, headers=headers("admin")), 422)
    assert body["fields"]["field"] == "grade"
    body = problem(client.post(url, json={"option": "yes"}, headers=headers("admin")), 422)
    assert body["fields"]["field"] == "option"
    body = problem(client.post(url, json={"extra": 1}, headers=headers("admin")), 422)
    assert "extra" in body["detail"]
    problem(client.post(url, json={}, headers=headers("employee")), 403, "forbidden")
    problem(client.post(url, json={}, headers=headers("client")), 403, "forbidden")
    assert task_of(client, headers, "admin", task_id)["closed"] is False
    done = client.post(url, json={}, headers=headers("manager"))
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["closed"]) == ("answered", True)
    assert done.json()["answer"]["by"] == users["manager"]
    problem(client.post(url, json={}, headers=headers("manager")), 409, "refused")
    wf = homework(account, users)
    problem(client.post(f"{API}/tasks/{wf}/answer", json={}, headers=headers("client")), 409)


@ON_BOTH
def test_workflow_status_with_the_transitions_each_person_may_make(
    client: TestClient, headers: Headers, account: MakeAccount, users: dict[str, str]
) -> None:
    task_id = homework(account, users)
    mine = task_of(client, headers, "client", task_id)
    assert mine["title"] == "Homework: Funnels" and mine["text"] == "Draw one"
    assert mine["workflow"]["statuses"] == ["new", "in_progress", "done", "completed"]
    assert mine["workflow"]["transitions"] == [{"to": "in_progress", "comment_required": False}]
    assert task_of(client, headers, "owner", task_id)["workflow"]["transitions"] == []
    url = f"{API}/tasks/{task_id}/status"
    problem(client.post(url, json={"to": "done"}, headers=headers("client")), 409, "refused")
    problem(client.post(url, json={"to": "in_progress"}, headers=headers("owner")), 403)
    for to in ("in_progress", "done"):
        moved = client.post(url, json={"to": to}, headers=headers("client"))
        assert moved.status_code == 200 and moved.json()["status"] == to, moved.text
    owner = task_of(client, headers, "owner", task_id)["workflow"]["transitions"]
    assert owner == [
        {"to": "completed", "comment_required": False},
        {"to": "in_progress", "comment_required": True},
    ]
    problem(client.post(url, json={"to": "in_progress"}, headers=headers("owner")), 409)
    back = client.post(url, json={"to": "in_progress", "comment": "Redo"}, headers=headers("owner"))
    assert back.status_code == 200 and back.json()["comments"][-1]["text"] == "Redo"
    problem(client.post(url, json={}, headers=headers("owner")), 422, "invalid_request")


def test_comments_history_and_notified_assignee(
    client: TestClient, headers: Headers, account: MakeAccount, users: dict[str, str]
) -> None:
    task_id = homework(account, users)
    url = f"{API}/tasks/{task_id}/comments"
    made = client.post(url, json={"text": "How is it going?"}, headers=headers("owner"))
    assert made.status_code == 201, made.text
    assert (made.json()["by"], made.json()["text"]) == (users["owner"], "How is it going?")
    listed = client.get(url, headers=headers("client"))
    assert [c["text"] for c in listed.json()] == ["How is it going?"]
    problem(client.post(url, json={"text": ""}, headers=headers("owner")), 422)
    problem(client.post(url, json={"text": "x"}, headers=headers("employee_plain")), 403)
    problem(client.get(url, headers=headers("manager")), 403, "forbidden")
    history = client.get(f"{API}/tasks/{task_id}/history", headers=headers("client")).json()
    assert (history[-1]["what"], history[-1]["by"]) == ("comment", users["owner"])
    problem(client.get(f"{API}/tasks/{task_id}/history", headers=headers("manager")), 403)
    feed = client.get(f"{API}/notifications", headers=headers("client")).json()
    assert feed["unread"] == 1 and feed["items"][0]["body"] == "How is it going?"


def test_attachments_upload_download_and_limits(
    client: TestClient, headers: Headers, account: MakeAccount, users: dict[str, str]
) -> None:
    task_id = homework(account, users)
    url = f"{API}/tasks/{task_id}/attachments"
    name = "отчёт; v2.pdf"
    up = client.post(url, files={"file": (name, PDF, "application/pdf")}, headers=headers("client"))
    assert up.status_code == 201, up.text
    meta = up.json()
    assert (meta["name"], meta["size"], meta["content_type"]) == (name, len(PDF), "application/pdf")
    down = client.get(f"{url}/{meta['id']}", headers=headers("owner"))
    assert down.status_code == 200 and down.content == PDF
    assert down.headers["content-type"] == "application/pdf"
    disposition = down.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="______ v2.pdf"')
    assert "filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82%3B%20v2.pdf" in disposition
    assert task_of(client, headers, "owner", task_id)["attachments"][0]["id"] == meta["id"]
    exe = client.post(url, files={"file": ("x.exe", b"MZ..", OCTET)}, headers=headers("client"))
    problem(exe, 415, "unsupported_type")
    fake = client.post(url, files={"file": ("x.pdf", b"hello", OCTET)}, headers=headers("client"))
    problem(fake, 415, "unsupported_type")
    big = b"%PDF" + b"0" * (10 * 1024 * 1024)
    problem(client.post(url, files={"file": ("b.pdf", big)}, headers=headers("client")), 413)
    problem(client.post(url, headers=headers("client")), 422, "invalid_request")
    problem(client.get(f"{url}/nope", headers=headers("owner")), 404, "not_found")
    problem(client.get(f"{url}/{meta['id']}", headers=headers("manager")), 403, "forbidden")
    assert len(task_of(client, headers, "owner", task_id)["attachments"]) == 1


OCTET = "application/octet-stream"


def test_variables_read_and_filled(
    client: TestClient, headers: Headers, account: MakeAccount, users: dict[str, str]
) -> None:
    task_id = homework(account, users)
    url = f"{API}/tasks/{task_id}/variables"
    found = client.get(url, headers=headers("owner")).json()
    assert found["topic"]["value"] == "Funnels" and found["topic"]["field"]["type"] == "string"
    put = client.put(url, json={"values": {"topic": "Ads"}}, headers=headers("owner"))
    assert put.status_code == 200 and put.json()["topic"]["value"] == "Ads", put.text
    bad = client.put(url, json={"values": {"nope": 1}}, headers=headers("owner"))
    problem(bad, 409)
    problem(client.put(url, json={"values": {}}, headers=headers("owner")), 422)
    problem(client.get(url, headers=headers("manager")), 403)
    assert client.get(url, headers=headers("client")).json()["topic"]["value"] == "Ads"


def test_tasks_added_by_hand(client: TestClient, headers: Headers, users: dict[str, str]) -> None:
    url = f"{API}/processes/homework-review/tasks"
    body = {"title": "Call Kira", "object": users["client"], "priority": "high"}
    made = client.post(url, json=body, headers=headers("manager"))
    assert made.status_code == 201, made.text
    assert (made.json()["title"], made.json()["priority"]) == ("Call Kira", "high")
    problem(client.post(url, json=body, headers=headers("employee")), 403, "forbidden")
    problem(client.post(url, json={**body, "priority": "max"}, headers=headers("admin")), 409)
    problem(client.post(url, json={"object": "client"}, headers=headers("admin")), 422)
    missing = client.post(f"{API}/processes/nope/tasks", json=body, headers=headers("admin"))
    problem(missing, 404, "not_found")


@ON_BOTH
def test_task_table_reassign_and_statistics(
    client: TestClient, headers: Headers, account: MakeAccount, users: dict[str, str]
) -> None:
    ids = [review(account, users)]
    acc = account()
    acc.attempt(lambda: acc.create_object("user", {"name": "Second"}, object_id="second"))
    ids.append(start(account, "homework-review", "second"))
    table = client.get(
        f"{API}/tasks",
        params={"process": "homework-review", "open": True, "sort": "-created_at"},
        headers=headers("admin"),
    )
    assert table.status_code == 200, table.text
    assert [t["id"] for t in table.json()["items"]] == ids[::-1]
    problem(
        client.get(
            f"{API}/tasks", params={"process": "homework-review"}, headers=headers("manager")
        ),
        403,
        "forbidden",
    )
    bad = client.get(
        f"{API}/tasks", params={"process": "homework-review", "sort": "x"}, headers=headers("admin")
    )
    assert problem(bad, 422)["fields"]["parameter"] == "sort"
    url = f"{API}/processes/homework-review/reassign"
    body = {"from": None, "to": users["manager"], "object": users["client"]}
    problem(client.post(url, json=body, headers=headers("manager")), 403, "forbidden")
    done = client.post(url, json=body, headers=headers("admin"))
    assert done.status_code == 200 and done.json() == {"count": 1}, done.text
    everyone = client.post(url, json={"to": users["employee"]}, headers=headers("admin"))
    assert everyone.json() == {"count": 2}
    stats = client.get(f"{API}/processes/homework-review/statistics", headers=headers("owner"))
    assert stats.status_code == 200, stats.text
    s = stats.json()
    assert s["total"] == 2 and s["by_status"] == {"open": 2}
    assert s["by_assignee"] == [{"assignee": users["employee"], "count": 2}]
    assert [r["count"] for r in s["rows"]] == [2] and sum(s["by_day"].values()) == 2
    problem(
        client.get(f"{API}/processes/homework-review/statistics", headers=headers("employee")),
        403,
    )
    naive = client.get(
        f"{API}/processes/homework-review/statistics",
        params={"created_from": "2024-01-01T00:00:00"},
        headers=headers("owner"),
    )
    assert problem(naive, 422)["fields"]["parameter"] == "created_from"


def test_client_cabinet_shows_own_tasks_only(
    client: TestClient, headers: Headers, account: MakeAccount, users: dict[str, str]
) -> None:
    task_id = homework(account, users)
    mine = client.get(f"{API}/clients/{users['client']}/tasks", headers=headers("client"))
    assert mine.status_code == 200, mine.text
    assert [t["id"] for t in mine.json()["items"]] == [task_id] and mine.json()["total"] == 1
    staff = client.get(f"{API}/clients/{users['client']}/tasks", headers=headers("manager"))
    assert staff.json()["total"] == 1
    problem(client.get(f"{API}/clients/manager/tasks", headers=headers("client")), 403)
    problem(client.get(f"{API}/clients/nobody/tasks", headers=headers("admin")), 404, "not_found")
