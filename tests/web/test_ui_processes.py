"""The process list and a process's admin tabs in the UI (TestClient, homework recipe):
General (forecast, approve, stop, activate, restart, start on one object), Variables, Tasks,
Statistics (chart data, bulk reassignment), each action allowed or refused by role."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from tests.web.ui_helpers import login

from flowlane.services import processes
from flowlane.services.account import Account

MakeAccount = Callable[[], Account]
HX = {"HX-Request": "true"}
RU = {"Accept-Language": "ru"}

APPROVED = """\
key: refund-check
name: Refund check
description: Checks a refund request before money goes back.
object: user
tags: [finance]
launch: {on: create, entry: "object.role == 'client'", approval: true}
variables:
  amount: {type: integer, label: Amount, required: true}
  reason: {type: enum, values: [late, broken], label: Reason}
counters: [tries]
blocks:
  start: {type: start, next: done}
  done: {type: end}
"""


SUPERVISED = """\
key: callback
name: Call the client back
object: user
task:
  title: "Call {{ object.name }} back"
  supervisors: [role:manager]
blocks:
  start: {type: start, next: call}
  call: {type: task, title: "Call {{ object.name }}", wait: true, next: done}
  done: {type: end}
"""


def start(account: MakeAccount, process: str, object_id: str, **vars_: str) -> str:
    acc = account()
    out: list[str] = []
    acc.attempt(lambda: out.append(acc.start(process, object_id, vars_, by="owner")))
    return out[0]


def seed_tasks(account: MakeAccount, users: dict[str, str]) -> list[str]:
    """Two homework-review tasks (unassigned: the users have no personal manager) and one
    homework task (held by the client); returns the instance ids."""
    acc = account()
    acc.attempt(lambda: acc.create_object("user", {"name": "Second Client"}, object_id="second"))
    return [
        start(account, "homework-review", users["client"]),
        start(account, "homework-review", "second"),
        start(account, "homework", users["client"], topic="Funnels", homework="Draw one"),
    ]


def deploy(account: MakeAccount, text: str) -> None:
    acc = account()
    acc.attempt(lambda: processes.deploy(acc, text, by="owner"))


def chart_of(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="stats-data">(.*?)</script>', html, re.S)
    assert found is not None, "no chart data in the page"
    return json.loads(found.group(1))


# ---- the list ------------------------------------------------------------------------------


def test_list_shows_processes_with_search_tags_status_and_counts(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    seed_tasks(account, users)
    deploy(account, APPROVED)
    login(client, "owner")
    page = client.get("/processes")
    assert page.status_code == 200, page.text
    text = page.text
    for key in ("homework", "homework-review", "refund-check"):
        assert f'data-key="{key}"' in text
    assert 'href="/processes/new"' in text
    row = re.search(r'data-key="refund-check">.*?</tr>', text, re.S)
    assert row is not None and "needs approval" in row.group(0)
    review = re.search(r'data-key="homework-review">.*?</tr>', text, re.S)
    assert review is not None and 'class="badge active"' in review.group(0)
    assert '<td class="num">2</td>' in review.group(0)  # two running instances
    found = client.get("/processes", params={"search": "refund"}).text
    assert 'data-key="refund-check"' in found and 'data-key="homework"' not in found
    by_key = client.get("/processes", params={"search": "homework"}).text
    assert 'data-key="homework"' in by_key and 'data-key="refund-check"' not in by_key
    tagged = client.get("/processes", params={"tag": "finance"}).text
    assert 'data-key="refund-check"' in tagged and 'data-key="homework-review"' not in tagged
    assert '<option value="finance" selected>' in tagged
    none = client.get("/processes", params={"search": "nothing like it"}).text
    assert "No process matches." in none


def test_list_in_russian_and_without_the_new_link_for_a_manager(client: TestClient) -> None:
    login(client, "manager")
    page = client.get("/processes", headers=RU)
    assert page.status_code == 200
    assert "Процессы" in page.text and "Последний запуск" in page.text
    assert 'href="/processes/new"' not in page.text


def test_clients_may_not_see_processes(client: TestClient) -> None:
    login(client, "client")
    page = client.get("/processes")
    assert page.status_code == 403
    assert "may not see processes" in page.text


# ---- General -------------------------------------------------------------------------------


def test_general_tab_shows_settings_launch_versions_and_actions(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    seed_tasks(account, users)
    login(client, "owner")
    page = client.get("/processes/homework")
    assert page.status_code == 200, page.text
    text = page.text
    assert "<h1>Homework" in text and "The client does the homework" in text
    for tab in ("", "/designer", "/variables", "/tasks", "/statistics"):
        assert f'href="/processes/homework{tab}"' in text
    assert 'aria-current="page">General<' in text
    assert "Started by hand" in text and "Repeat: no" in text
    assert "role:owner" in text  # the supervisors
    versions = re.search(r'<table class="list" id="versions">.*?</table>', text, re.S)
    assert versions is not None and "running: 1" in versions.group(0)
    assert 'id="stop"' in text and 'id="restart"' in text and 'id="activate"' not in text
    assert 'id="approve"' not in text  # needs no approval
    assert "hx-confirm=" in text and "deletes the tasks they created" in text
    assert 'name="var_topic"' in text and 'name="var_homework"' in text


def test_launch_in_words_and_forecast(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    deploy(account, APPROVED)
    login(client, "owner")
    text = client.get("/processes/refund-check").text
    assert "On create of an object of type" in text
    assert "Entry condition: (object.role == &#39;client&#39;)" in text
    fragment = client.get("/processes/refund-check/forecast", headers=HX)
    assert fragment.status_code == 200
    # one client among the seeded users: it would enter now
    assert re.search(r"1 object would start the process now", fragment.text), fragment.text
    ru = client.get("/processes/refund-check/forecast", headers={**HX, **RU})
    assert "1 объект запустит процесс сейчас" in ru.text, ru.text
    manual = client.get("/processes/homework/forecast", headers=HX).text
    assert "manual launch" in manual


def test_approve_then_stop_then_activate(client: TestClient, account: MakeAccount) -> None:
    deploy(account, APPROVED)
    csrf = login(client, "owner")
    page = client.get("/processes/refund-check").text
    assert 'id="approve"' in page and 'id="activate"' not in page
    assert "Must be approved by an admin before it starts" in page
    hx = {**HX, "X-CSRF-Token": csrf}
    approved = client.post("/processes/refund-check/approve", headers=hx)
    assert approved.status_code == 200, approved.text
    assert 'id="lifecycle"' in approved.text and "approved and started" in approved.text
    assert 'id="approve"' not in approved.text and 'id="stop"' in approved.text
    again = client.post("/processes/refund-check/approve", headers=hx)
    assert again.status_code == 409 and "approved already" in again.text
    stopped = client.post("/processes/refund-check/stop", headers=hx)
    assert stopped.status_code == 200 and "The process is stopped." in stopped.text
    assert 'class="badge stopped"' in stopped.text and 'id="activate"' in stopped.text
    twice = client.post("/processes/refund-check/stop", headers=hx)
    assert twice.status_code == 409 and "stopped already" in twice.text
    active = client.post("/processes/refund-check/activate", headers=hx)
    assert active.status_code == 200 and "The process is active." in active.text
    assert 'class="badge active"' in active.text


def test_actions_are_hidden_and_refused_for_a_manager(
    client: TestClient, account: MakeAccount
) -> None:
    deploy(account, APPROVED)
    csrf = login(client, "manager")
    page = client.get("/processes/refund-check").text
    for button in ('id="approve"', 'id="stop"', 'id="activate"', 'id="restart"'):
        assert button not in page
    assert 'id="start-form"' in page  # managers may start processes
    hx = {**HX, "X-CSRF-Token": csrf}
    for action in ("approve", "stop", "activate", "restart"):
        refused = client.post(f"/processes/refund-check/{action}", headers=hx)
        assert refused.status_code == 403, (action, refused.text)
        assert 'class="flash error"' in refused.text and "may not" in refused.text
    # without the CSRF token: refused before anything happens
    assert client.post("/processes/homework/stop", headers=HX).status_code == 403


def test_employee_sees_no_start_form(client: TestClient) -> None:
    login(client, "employee")
    page = client.get("/processes/homework")
    assert page.status_code == 200
    assert 'id="start-form"' not in page.text and 'id="stop"' not in page.text


def test_restart_warns_and_reports_what_it_did(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    seed_tasks(account, users)
    csrf = login(client, "admin")
    done = client.post("/processes/homework-review/restart", headers={**HX, "X-CSRF-Token": csrf})
    assert done.status_code == 200, done.text
    assert "2 instances cancelled, 2 tasks deleted." in done.text
    assert 'class="badge stopped"' in done.text and 'id="activate"' in done.text
    ru = client.post(
        "/processes/homework/restart",
        headers={**HX, **RU, "X-CSRF-Token": csrf},
    )
    assert "1 экземпляр отменён, 1 задача удалена." in ru.text, ru.text
    page = client.get("/processes/homework-review/tasks")
    assert "No task matches." in page.text


def test_start_on_one_object_with_variables(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    csrf = login(client, "manager")
    hx = {**HX, "X-CSRF-Token": csrf}
    done = client.post(
        "/processes/homework/start",
        data={"object": users["client"], "var_topic": "Funnels", "var_homework": "Draw one"},
        headers=hx,
    )
    assert done.status_code == 200, done.text
    found = re.search(r'href="/processes/homework/variables\?instance=([^"]+)">', done.text)
    assert found is not None, done.text
    iid = found.group(1)
    assert f'href="/instances/{iid}"' in done.text  # the instance's own page
    acc = account()
    state = acc.store.get_instance(iid)
    assert state is not None and state.vars["topic"] == "Funnels"
    missing = client.post("/processes/homework/start", data={"object": "nobody"}, headers=hx)
    assert missing.status_code == 404 and "nobody" in missing.text
    client.cookies.clear()
    csrf = login(client, "employee")
    refused = client.post(
        "/processes/homework/start",
        data={"object": users["client"]},
        headers={**HX, "X-CSRF-Token": csrf},
    )
    assert refused.status_code == 403 and "may not start homework" in refused.text


def test_start_refused_while_stopped_and_bad_variables_named(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    deploy(account, APPROVED)
    csrf = login(client, "owner")
    hx = {**HX, "X-CSRF-Token": csrf}
    waiting = client.post(
        "/processes/refund-check/start", data={"object": users["client"]}, headers=hx
    )
    assert waiting.status_code == 409 and "must be approved" in waiting.text
    client.post("/processes/refund-check/approve", headers=hx)
    bad = client.post(
        "/processes/refund-check/start",
        data={"object": users["client"], "var_amount": "lots"},
        headers=hx,
    )
    assert bad.status_code == 409 and "amount" in bad.text
    client.post("/processes/homework/stop", headers=hx)
    stopped = client.post("/processes/homework/start", data={"object": users["client"]}, headers=hx)
    assert stopped.status_code == 409 and "is stopped" in stopped.text


# ---- Variables -----------------------------------------------------------------------------


def test_variables_tab_lists_the_file_and_an_instances_values(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    ids = seed_tasks(account, users)
    deploy(account, APPROVED)
    login(client, "owner")
    page = client.get("/processes/refund-check/variables")
    assert page.status_code == 200, page.text
    table = re.search(r'<table class="list" id="variables">.*?</table>', page.text, re.S)
    assert table is not None
    assert "amount" in table.group(0) and "integer" in table.group(0)
    assert "late, broken" in table.group(0)
    assert 'id="counters"' in page.text and "tries" in page.text
    homework = client.get("/processes/homework/variables", params={"instance": ids[2]})
    assert homework.status_code == 200
    values = re.search(r'<table class="list" id="instance-vars">.*?</table>', homework.text, re.S)
    assert values is not None and "Funnels" in values.group(0) and "Draw one" in values.group(0)
    assert f'href="?instance={ids[2]}"' in homework.text  # offered among the running ones
    other = client.get("/processes/homework/variables", params={"instance": ids[0]})
    assert "is of another process (homework-review)" in other.text
    unknown = client.get("/processes/homework/variables", params={"instance": "nope"})
    assert "instance &#39;nope&#39; does not exist" in unknown.text


# ---- Tasks ---------------------------------------------------------------------------------


def test_task_table_with_filters_links_and_paging(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    seed_tasks(account, users)
    login(client, "owner")
    page = client.get("/processes/homework-review/tasks")
    assert page.status_code == 200, page.text
    rows = re.findall(r'<tr data-task="([^"]+)">', page.text)
    assert len(rows) == 2
    assert f'href="/tasks/{rows[0]}"' in page.text
    assert f'href="/objects/user/{users["client"]}"' in page.text
    assert 'href="/objects/user/second"' in page.text
    assert "Review the homework of Kira Client" in page.text
    one = client.get("/processes/homework-review/tasks", params={"object": "second"}).text
    assert len(re.findall(r"<tr data-task=", one)) == 1 and "Second Client" in one
    nobody = client.get("/processes/homework-review/tasks", params={"assignee": "-"}).text
    assert len(re.findall(r"<tr data-task=", nobody)) == 2
    held = client.get("/processes/homework/tasks", params={"assignee": users["client"]}).text
    assert len(re.findall(r"<tr data-task=", held)) == 1 and "Kira Client" in held
    none = client.get("/processes/homework/tasks", params={"status": "completed"}).text
    assert "No task matches." in none
    block = client.get("/processes/homework-review/tasks", params={"block": "review"}).text
    assert len(re.findall(r"<tr data-task=", block)) == 2
    assert '<option value="review">' in block  # the blocks are offered
    other = client.get("/processes/homework-review/tasks", params={"block": "reviewed"}).text
    assert "No task matches." in other
    oldest = client.get("/processes/homework-review/tasks", params={"sort": "created_at"}).text
    assert re.findall(r'<tr data-task="([^"]+)">', oldest) == list(reversed(rows))
    assert '<option value="created_at" selected>Created ↑</option>' in oldest
    paged = client.get("/processes/homework-review/tasks", params={"page": 2}).text
    assert "No task matches." in paged
    bad = client.get("/processes/homework-review/tasks", params={"sort": "block"})
    assert bad.status_code == 422 and "sort must be one of" in bad.text


def test_task_table_refused_for_a_manager_with_the_reason(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    seed_tasks(account, users)
    login(client, "manager")
    page = client.get("/processes/homework-review/tasks")
    assert page.status_code == 200
    assert 'id="refused"' in page.text and "may not list the tasks" in page.text
    assert "<tr data-task=" not in page.text


# ---- Statistics ----------------------------------------------------------------------------


def test_statistics_chart_data_and_grouping(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    seed_tasks(account, users)
    login(client, "owner")
    page = client.get("/processes/homework-review/statistics")
    assert page.status_code == 200, page.text
    assert '<canvas id="stats-chart"' in page.text
    assert "/static/vendor/chart.js/chart.umd.min.js" in page.text
    assert chart_of(page.text) == {"labels": ["open"], "counts": [2], "label": "Tasks"}
    by_assignee = client.get(
        "/processes/homework-review/statistics", params={"group": "assignee"}
    ).text
    assert chart_of(by_assignee)["labels"] == ["nobody"]
    by_day = chart_of(
        client.get("/processes/homework-review/statistics", params={"group": "day"}).text
    )
    assert by_day["counts"] == [2] and re.match(r"\d{4}-\d\d-\d\d$", by_day["labels"][0])
    by_block = client.get("/processes/homework-review/statistics", params={"group": "block"})
    assert chart_of(by_block.text)["labels"] == ["review"]
    assert chart_of(by_block.text)["counts"] == [2]
    homework = client.get(
        "/processes/homework/statistics", params={"group": "assignee", "status": "new"}
    ).text
    assert chart_of(homework) == {"labels": ["Kira Client"], "counts": [1], "label": "Tasks"}
    ru = client.get("/processes/homework-review/statistics", headers=RU)
    assert chart_of(ru.text)["label"] == "Задачи" and "Сменить ответственного" in ru.text


def test_reassign_to_a_manager_then_back_to_nobody(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    seed_tasks(account, users)
    csrf = login(client, "admin")
    hx = {**HX, "X-CSRF-Token": csrf}
    page = client.get("/processes/homework-review/statistics").text
    assert 'id="reassign-form"' in page
    done = client.post(
        "/processes/homework-review/reassign",
        data={"from": "-", "to": users["manager"]},
        headers=hx,
    )
    assert done.status_code == 200, done.text
    assert "2 tasks reassigned" in done.text and done.headers["HX-Trigger"] == "tasks-reassigned"
    stats = client.get(
        "/processes/homework-review/statistics",
        params={"group": "assignee"},
        headers={**HX, "HX-Target": "stats"},
    )
    assert stats.text.lstrip().startswith('<div id="stats"')  # the fragment only
    assert chart_of(stats.text)["labels"] == ["Mila Manager"]
    table = client.get("/processes/homework-review/tasks").text
    assert table.count("Mila Manager</td>") == 2
    back = client.post(
        "/processes/homework-review/reassign",
        data={"from": users["manager"], "object": "second", "to": "-"},
        headers=hx,
    )
    assert "1 task reassigned" in back.text
    ru = client.post(
        "/processes/homework-review/reassign",
        data={"to": "-"},
        headers={**hx, **RU},
    )
    assert "1 задача переназначена" in ru.text, ru.text
    empty = client.post("/processes/homework-review/reassign", data={"to": ""}, headers=hx)
    assert empty.status_code == 422 and "to: choose a person or nobody" in empty.text
    ghost = client.post("/processes/homework-review/reassign", data={"to": "ghost"}, headers=hx)
    assert ghost.status_code == 404 and "ghost" in ghost.text


def test_block_filter_of_the_api_and_the_reassignment(
    client: TestClient,
    account: MakeAccount,
    users: dict[str, str],
    headers: Callable[[str], dict[str, str]],
) -> None:
    seed_tasks(account, users)
    api = client.get(
        "/api/v1/tasks",
        params={"process": "homework-review", "block": "review"},
        headers=headers("owner"),
    )
    assert api.status_code == 200 and api.json()["total"] == 2
    stats = client.get(
        "/api/v1/processes/homework-review/statistics",
        params={"block": "reviewed"},
        headers=headers("owner"),
    )
    assert stats.json()["total"] == 0
    csrf = login(client, "owner")
    hx = {**HX, "X-CSRF-Token": csrf}
    none = client.post(
        "/processes/homework-review/reassign",
        data={"block": "reviewed", "to": users["manager"]},
        headers=hx,
    )
    assert "0 tasks reassigned" in none.text
    done = client.post(
        "/processes/homework-review/reassign",
        data={"block": "review", "to": users["manager"]},
        headers=hx,
    )
    assert "2 tasks reassigned" in done.text


def test_reassign_refused_for_a_manager_and_allowed_for_the_owner(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    seed_tasks(account, users)
    csrf = login(client, "manager")
    stats = client.get("/processes/homework-review/statistics").text
    assert 'id="refused"' in stats and "may not see the task statistics" in stats
    assert 'id="reassign-form"' not in stats
    refused = client.post(
        "/processes/homework-review/reassign",
        data={"to": users["manager"]},
        headers={**HX, "X-CSRF-Token": csrf},
    )
    assert refused.status_code == 403
    assert "admins, owners and the process&#39;s supervisors may" in refused.text
    client.cookies.clear()
    csrf = login(client, "owner")
    page = client.get("/processes/homework/statistics").text
    assert 'id="reassign-form"' in page
    done = client.post(
        "/processes/homework/reassign",
        data={"to": users["manager"]},
        headers={**HX, "X-CSRF-Token": csrf},
    )
    assert "1 task reassigned" in done.text


def test_a_supervisor_who_is_a_manager_sees_statistics_and_reassigns(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    deploy(account, SUPERVISED)
    start(account, "callback", users["client"])
    csrf = login(client, "manager")
    tasks = client.get("/processes/callback/tasks").text
    assert len(re.findall(r"<tr data-task=", tasks)) == 1 and 'id="refused"' not in tasks
    stats = client.get("/processes/callback/statistics").text
    assert 'id="reassign-form"' in stats and 'id="stop"' not in stats
    done = client.post(
        "/processes/callback/reassign",
        data={"to": users["manager"]},
        headers={**HX, "X-CSRF-Token": csrf},
    )
    assert "1 task reassigned" in done.text
    assert chart_of(
        client.get("/processes/callback/statistics", params={"group": "assignee"}).text
    )["labels"] == ["Mila Manager"]


def test_put_a_task_by_hand_on_the_tasks_tab(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    csrf = login(client, "owner")
    page = client.get("/processes/homework-review/tasks").text
    assert 'id="add-task-form"' in page and 'hx-trigger="task-added from:body"' in page
    hx = {**HX, "X-CSRF-Token": csrf}
    done = client.post(
        "/processes/homework-review/tasks",
        data={
            "title": "Call Kira about the homework",
            "object": users["client"],
            "assignee": users["manager"],
            "priority": "high",
        },
        headers=hx,
    )
    assert done.status_code == 200, done.text
    assert done.headers["HX-Trigger"] == "task-added"
    found = re.search(r'href="/tasks/([^"]+)">Call Kira about the homework<', done.text)
    assert found is not None, done.text
    table = client.get("/processes/homework-review/tasks").text
    row = re.search(rf'<tr data-task="{found.group(1)}">.*?</tr>', table, re.S)
    assert row is not None and "Mila Manager" in row.group(0) and "badge high" in row.group(0)
    empty = client.post("/processes/homework-review/tasks", data={"title": " "}, headers=hx)
    assert empty.status_code == 422 and "title: give the task a title" in empty.text
    bad = client.post(
        "/processes/homework-review/tasks",
        data={"title": "x", "priority": "whenever"},
        headers=hx,
    )
    assert bad.status_code in (409, 422) and "priority" in bad.text
    client.cookies.clear()
    csrf = login(client, "employee-plain")
    refused = client.post(
        "/processes/homework-review/tasks",
        data={"title": "x"},
        headers={**HX, "X-CSRF-Token": csrf},
    )
    assert refused.status_code == 403, refused.text
