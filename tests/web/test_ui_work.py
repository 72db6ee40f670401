"""The work pages over TestClient: inbox (order, paging, claim / give back), the task page
(answer with typed fields and per-field errors, workflow status changes allowed / refused /
needing a comment, comments with files, downloads and their refusal, variables, history),
the task board (a move, a refused move), the client cabinet and what a client may open."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlencode

from fastapi.testclient import TestClient
from tests.api.conftest import API, PASSWORD
from tests.web.ui_helpers import login as login_only

from flowlane.services.account import Account
from flowlane.store.records import TaskRecord

MakeAccount = Callable[[], Account]
Headers = Callable[[str], dict[str, str]]
HX = {"HX-Request": "true"}
PDF = b"%PDF-1.4\n% a tiny pdf\n"

GRADING = """\
key: grading
name: Grading
object: user
task:
  executors: [role:manager]
  reaction: 1h
variables:
  topic: {type: string, label: Topic}
  score: {type: integer, label: Score}
blocks:
  start: {type: start, next: grade}
  grade:
    type: question
    title: "Grade {{ object.name }}"
    text: "Look at <b>the work</b> of {{ object.name }}"
    options: {pass: passed, fail: failed}
    fields:
      grade: {type: integer, required: true, label: Grade}
      level: {type: enum, values: [basic, advanced]}
      note: {type: text, label: Note}
  passed: {type: end, outcome: positive, result: passed}
  failed: {type: end, outcome: negative, result: failed}
"""


def _start(
    account: MakeAccount, process: str, object_id: str, ago: timedelta | None = None, **vars_: str
) -> TaskRecord:
    acc = account()
    if ago is not None:
        acc.runner.now = acc.now - ago
    out: list[TaskRecord] = []

    def go() -> None:
        iid = acc.start(process, object_id, dict(vars_), by="owner")
        out.append(next(t for t in acc.store.find_tasks(open_only=True) if t.instance_id == iid))

    acc.attempt(go)
    return out[0]


def _user(account: MakeAccount, uid: str, name: str, role: str = "client") -> None:
    acc = account()
    data = {"name": name, "email": f"{uid}@example.com", "password": PASSWORD, "role": role}
    acc.attempt(lambda: acc.create_object("user", data, object_id=uid))


def _homework(account: MakeAccount, users: dict[str, str]) -> TaskRecord:
    return _start(account, "homework", users["client"], topic="Funnels", homework="Draw one")


def _deploy_grading(client: TestClient, headers: Headers) -> None:
    r = client.post(
        f"{API}/processes",
        content=GRADING,
        headers={**headers("owner"), "Content-Type": "text/yaml"},
    )
    assert r.status_code == 201, r.text


def login(client: TestClient, user_id: str) -> str:
    """Log in; htmx requests of the page carry the CSRF header (flowlane.js adds it)."""
    csrf = login_only(client, user_id)
    client.headers["X-CSRF-Token"] = csrf
    return csrf


def _column_of(board: str, task_id: str) -> str | None:
    """The status of the board column that holds the task's card."""
    for part in board.split('<section class="column" data-status="')[1:]:
        if f'name="card" value="{task_id}@' in part:
            return part.split('"', 1)[0]
    return None


def _task_ids(html: str) -> list[str]:
    return re.findall(r'<tr id="row-[^"]+" data-task="([^"]+)"', html)


def test_inbox_order_paging_and_claim(
    client: TestClient, account: MakeAccount, users: dict[str, str], headers: Headers
) -> None:
    _deploy_grading(client, headers)
    for i in range(3):
        _user(account, f"pupil{i}", f"Pupil {i}")
    review = _start(account, "homework-review", "pupil2")  # no reaction time: last
    later = _start(account, "grading", "pupil1")  # reaction within the hour
    first = _start(account, "grading", "pupil0", ago=timedelta(hours=2))  # overdue
    login(client, users["manager"])
    page = client.get("/inbox", params={"size": 2})
    assert page.status_code == 200, page.text
    ids = _task_ids(page.text)
    assert len(ids) == 2
    assert 'id="inbox-total" title="Tasks in the inbox">3<' in page.text
    assert "1–2 of 3" in page.text and 'rel="next"' in page.text
    rest = client.get("/inbox", params={"size": 2, "page": 2})
    all_ids = ids + _task_ids(rest.text)
    assert all_ids == [first.id, later.id, review.id]
    assert "is-overdue" in page.text and ">overdue<" in page.text
    assert "3–3 of 3" in rest.text and 'rel="prev"' in rest.text
    # the same order as the service's: the API's inbox
    api = client.get(f"{API}/inbox", headers=headers("manager")).json()
    assert all_ids == [t["id"] for t in api["items"]]
    # badges: priority and object, the process's name
    assert 'data-priority="normal"' in page.text and "Grading" in page.text
    assert 'href="/objects/user/pupil0"' in page.text + rest.text

    # claim in a row (htmx): the row comes back with the new assignee and a give-back button
    row = client.post(f"/tasks/{first.id}/claim", data={"view": "row"}, headers=HX)
    assert row.status_code == 200, row.text
    assert row.text.lstrip().startswith("<tr") and "Mila Manager" in row.text
    assert "Give back" in row.text and "Take" not in row.text
    again = client.post(f"/tasks/{first.id}/claim", data={"view": "row"}, headers=HX)
    assert again.status_code == 200  # your own task: claiming again changes nothing
    back = client.post(f"/tasks/{first.id}/unclaim", data={"view": "row"}, headers=HX)
    assert back.status_code == 200 and "nobody" in back.text and "Take" in back.text
    # another person's task cannot be taken: refused, in the flash fragment
    client.post(f"/tasks/{first.id}/claim", data={"view": "row"}, headers=HX)
    other = TestClient(client.app)
    login(other, users["admin"])
    refused = other.post(f"/tasks/{first.id}/claim", data={"view": "row"}, headers=HX)
    assert refused.status_code == 409
    assert 'class="flash error"' in refused.text and "already assigned" in refused.text
    # a plain form (no htmx, the token in a field) redirects back to the task
    token = client.headers.pop("X-CSRF-Token")
    plain = client.post(
        f"/tasks/{review.id}/claim", data={"csrf_token": token}, follow_redirects=False
    )
    assert plain.status_code == 303 and plain.headers["location"] == f"/tasks/{review.id}"
    # without the CSRF token the change is refused
    assert client.post(f"/tasks/{review.id}/unclaim").status_code == 403


def test_answer_with_fields_and_a_field_error(
    client: TestClient, account: MakeAccount, users: dict[str, str], headers: Headers
) -> None:
    _deploy_grading(client, headers)
    task = _start(account, "grading", users["client"], topic="Funnels")
    login(client, users["manager"])
    page = client.get(f"/tasks/{task.id}")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Grade Kira Client" in html
    assert "Look at &lt;b&gt;the work&lt;/b&gt;" in html  # the text is escaped, not markup
    assert 'name="f.grade"' in html and 'type="number" step="1"' in html
    assert 'aria-required="true"' in html
    assert '<select id="in-f.level"' in html and ">advanced<" in html
    assert '<textarea id="in-f.note"' in html
    assert 'name="option" value="pass"' in html and 'name="option" value="fail"' in html
    assert 'href="/objects/user/client"' in html and "Grading" in html
    # a missing required field: the answer is refused and the field says why
    bad = client.post(f"/tasks/{task.id}/answer", data={"option": "pass"}, headers=HX)
    assert bad.status_code == 200, bad.text
    assert 'data-field="grade"' in bad.text and "field-error" in bad.text
    assert "field &#39;grade&#39; is required" in bad.text
    # a value of the wrong type: the same, and the typed text stays in the input
    bad = client.post(
        f"/tasks/{task.id}/answer",
        data={"option": "pass", "f.grade": "five", "f.note": "kept"},
        headers=HX,
    )
    assert "field-error" in bad.text and "five" in bad.text and ">kept</textarea>" in bad.text
    assert re.search(r'id="err-f.grade"[^>]*>[^<]*grade', bad.text)
    # no option: the option row says so
    none = client.post(f"/tasks/{task.id}/answer", data={"f.grade": "5"}, headers=HX)
    assert "an option is required" in none.text
    # a plain form with an error gets the whole page with 422
    plain = client.post(f"/tasks/{task.id}/answer", data={"option": "pass"})
    assert plain.status_code == 422 and "<html" in plain.text
    # the answer
    done = client.post(
        f"/tasks/{task.id}/answer",
        data={"option": "pass", "f.grade": "5", "f.level": "advanced"},
        headers=HX,
    )
    assert done.status_code == 200, done.text
    assert 'data-status="answered"' in done.text and "Answer saved." in done.text
    assert 'class="answer-option">pass<' in done.text and "advanced" in done.text
    acc = account()
    stored = acc.store.get_task(task.id)
    assert stored is not None and stored.answer is not None
    assert stored.answer["fields"] == {"grade": 5, "level": "advanced"}
    # answering twice is refused (flash)
    twice = client.post(f"/tasks/{task.id}/answer", data={"option": "fail"}, headers=HX)
    assert twice.status_code == 409 and "answered already" in twice.text


def test_variables_view_and_edit(
    client: TestClient, account: MakeAccount, users: dict[str, str], headers: Headers
) -> None:
    _deploy_grading(client, headers)
    task = _start(account, "grading", users["client"], topic="Funnels")
    login(client, users["manager"])
    page = client.get(f"/tasks/{task.id}").text
    assert 'name="v.topic"' in page and 'value="Funnels"' in page
    bad = client.post(
        f"/tasks/{task.id}/variables", data={"v.topic": "Funnels", "v.score": "x"}, headers=HX
    )
    assert bad.status_code == 409 and "score" in bad.text
    ok = client.post(
        f"/tasks/{task.id}/variables", data={"v.topic": "Ads", "v.score": "7"}, headers=HX
    )
    assert ok.status_code == 200 and "Variables saved." in ok.text
    assert 'value="Ads"' in ok.text and 'value="7"' in ok.text
    assert "variables filled" in ok.text  # history


def test_workflow_status_allowed_refused_and_comment_required(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    task = _homework(account, users)
    url = f"/tasks/{task.id}"
    login(client, users["client"])
    page = client.get(url).text
    assert 'name="to" value="in_progress"' in page and 'value="done"' not in page
    refused = client.post(f"{url}/status", data={"to": "done"}, headers=HX)
    assert refused.status_code == 409
    assert "no transition from &#39;new&#39; to &#39;done&#39;" in refused.text
    moved = client.post(f"{url}/status", data={"to": "in_progress"}, headers=HX)
    assert moved.status_code == 200 and 'data-status="in_progress"' in moved.text
    assert "Moved to: in progress" in moved.text
    moved = client.post(f"{url}/status", data={"to": "done", "comment": "Here it is"}, headers=HX)
    assert 'data-status="done"' in moved.text and "Here it is" in moved.text
    assert "You may not change the status now." in moved.text

    owner = TestClient(client.app)
    login(owner, users["owner"])
    page = owner.get(url).text
    assert (
        'value="completed"' in page and 'data-to="in_progress" data-comment-required="true"' in page
    )
    assert "(required for: in progress)" in page
    # the manager may see it (not at all: homework is the owner's) / may not move it
    manager = TestClient(client.app)
    login(manager, users["manager"])
    assert manager.post(f"{url}/status", data={"to": "completed"}, headers=HX).status_code == 403
    no_comment = owner.post(f"{url}/status", data={"to": "in_progress"}, headers=HX)
    assert no_comment.status_code == 409 and "a comment is required" in no_comment.text
    back = owner.post(
        f"{url}/status", data={"to": "in_progress", "comment": "Redo step 2"}, headers=HX
    )
    assert back.status_code == 200 and 'data-status="in_progress"' in back.text
    history = client.get(url).text
    assert "Redo step 2" in history and "done → in progress" in history
    # a plain form: redirect to the page
    plain = client.post(f"{url}/status", data={"to": "done"}, follow_redirects=False)
    assert plain.status_code == 303
    done = owner.post(f"{url}/status", data={"to": "completed"}, headers=HX)
    assert done.status_code == 200 and 'data-status="completed"' in done.text
    assert 'name="to"' not in done.text


def test_comments_with_files_and_downloads(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    task = _homework(account, users)
    url = f"/tasks/{task.id}"
    csrf = login(client, users["client"])
    res = client.post(
        f"{url}/comments",
        data={"text": "My funnel", "csrf_token": csrf},
        files=[
            ("files", ("funnel.pdf", PDF, "application/pdf")),
            ("files", ("notes.txt", b"step one", "text/plain")),
        ],
        headers=HX,
    )
    assert res.status_code == 200, res.text
    assert "My funnel" in res.text and "funnel.pdf" in res.text and "notes.txt" in res.text
    links = re.findall(r'href="(/tasks/[^"]+/files/[^"]+)"', res.text)
    assert len(links) == 2
    got = client.get(links[0])
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert 'filename="funnel.pdf"' in got.headers["content-disposition"]
    # a file alone, no text
    only = client.post(
        f"{url}/comments", files=[("files", ("more.txt", b"x", "text/plain"))], headers=HX
    )
    assert only.status_code == 200 and "more.txt" in only.text
    # refusals: an empty comment, a program, a file type not accepted
    empty = client.post(f"{url}/comments", data={"text": "  "}, headers=HX)
    assert empty.status_code == 422 and "a comment needs text" in empty.text
    exe = client.post(
        f"{url}/comments",
        files=[("files", ("run.exe", b"MZ..", "application/octet-stream"))],
        headers=HX,
    )
    assert exe.status_code == 415 and "not allowed" in exe.text
    # the owner (a supervisor) reads it; the manager and another client may not download
    owner = TestClient(client.app)
    login(owner, users["owner"])
    assert owner.get(links[1]).content == b"step one"
    manager = TestClient(client.app)
    login(manager, users["manager"])
    assert manager.get(links[0]).status_code == 403
    _user(account, "other", "Oleg Other")
    stranger = TestClient(client.app)
    login(stranger, "other")
    refused = stranger.get(links[0])
    assert refused.status_code == 403 and b"%PDF" not in refused.content
    assert client.get(f"{url}/files/nope").status_code == 404


def test_board_moves_and_refusals(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    task = _homework(account, users)
    review = _start(account, "homework-review", users["client"])
    login(client, users["owner"])
    board = client.get("/tasks/board", params={"process": "homework"})
    assert board.status_code == 200, board.text
    assert '<form id="board"' in board.text and 'hx-trigger="end"' in board.text
    columns = re.findall(r'<section class="column" data-status="([^"]+)"', board.text)
    assert columns == ["new", "in_progress", "done", "completed"]
    assert f'value="{task.id}@new"' in board.text
    assert "Sortable.min.js" in board.text and "work.js" in board.text

    def move(who: TestClient, to: str, comment: str = "") -> str:
        data: list[tuple[str, str]] = [
            ("process", "homework"),
            ("closed", ""),
            ("comment", comment),
        ]
        for col in columns:
            data.append(("column", col))
            if col == to:
                data.append(("card", f"{task.id}@{current()}"))
        form = {**HX, "Content-Type": "application/x-www-form-urlencoded"}
        r = who.post("/tasks/board", content=urlencode(data), headers=form)
        assert r.status_code == 200, r.text
        return r.text

    def current() -> str:
        stored = account().store.get_task(task.id)
        assert stored is not None
        return stored.status

    # the owner may not make the client's move: the card stays, the reason is told
    refused = move(client, "in_progress")
    assert "may not move the task" in refused and 'hx-swap-oob="beforeend:#flash"' in refused
    assert _column_of(refused, task.id) == "new"
    assert current() == "new"
    kira = TestClient(client.app)
    login(kira, users["client"])
    for to in ("in_progress", "done"):
        assert kira.post(f"/tasks/{task.id}/status", data={"to": to}, headers=HX).status_code == 200
    assert current() == "done"
    # sending back needs a comment
    assert "a comment is required" in move(client, "in_progress")
    assert current() == "done"
    moved = move(client, "in_progress", comment="Again please")
    assert "Moved to: in progress" in moved and _column_of(moved, task.id) == "in_progress"
    assert current() == "in_progress"
    # the manager's own board: the inbox's tasks, columns from them
    manager = TestClient(client.app)
    login(manager, users["manager"])
    mine = manager.get("/tasks/board").text
    assert review.id in mine and task.id not in mine
    assert re.findall(r'<section class="column" data-status="([^"]+)"', mine) == ["open", "done"]
    # a process board is for those who oversee it
    assert manager.get("/tasks/board", params={"process": "homework"}).status_code == 403


def test_cabinet_and_what_a_client_may_open(
    client: TestClient, account: MakeAccount, users: dict[str, str]
) -> None:
    task = _homework(account, users)
    review = _start(account, "homework-review", users["client"])
    login(client, users["client"])
    home = client.get("/", follow_redirects=False)
    assert home.headers["location"] == "/cabinet"
    cab = client.get("/cabinet")
    assert cab.status_code == 200, cab.text
    assert "Homework: Funnels" in cab.text and f'href="/tasks/{task.id}"' in cab.text
    assert 'data-status="new"' in cab.text
    page = client.get(f"/tasks/{task.id}")
    assert page.status_code == 200
    assert "Draw one" in page.text and 'href="/cabinet"' in page.text
    assert "/objects/" not in page.text  # no staff links for a client
    assert 'name="v.topic"' not in page.text and 'data-variable="topic">Funnels<' in page.text
    assert "claim" not in page.text.split('id="task"', 1)[1]
    # the review task is on the client's profile but is the manager's work: not listed,
    # and not to be opened
    assert f'href="/tasks/{review.id}"' not in cab.text
    staff = client.get(f"/tasks/{review.id}")
    assert staff.status_code == 403 and "may not see task" in staff.text
    # the staff pages send a client to the cabinet
    for staff_page in ("/inbox", "/tasks/board"):
        went = client.get(staff_page, follow_redirects=False)
        assert went.status_code == 303 and went.headers["location"] == "/cabinet"
    # staff see their own tasks as a client would: none here
    login(client, users["manager"])
    assert "Nothing to do right now." in client.get("/cabinet").text
