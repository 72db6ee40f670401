"""Attachments, the history of a task, process variables as task fields and hand-made tasks,
on every store; every refusal changes nothing (issue 5, items 3, 4 and 6)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from flowlane.core.errors import Refused
from flowlane.model.definition import Definition
from flowlane.model.recipe import Recipe, load_recipe, parse_process
from flowlane.model.yamlio import parse_text
from flowlane.runtime.simulate import Database, build_account
from flowlane.services.account import Account
from flowlane.services.taskwork import MANUAL_STATUS, AttachmentLimits
from flowlane.store.files import LocalFileStore
from flowlane.store.records import TaskRecord

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "launches"
TZ = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)
PDF = b"%PDF-1.4 homework"

PROCESS = """
key: review
name: Review an order
object: order
variables:
  grade: {type: number, label: Grade}
  note: {type: string}
task:
  executors: ["user:mila"]
  supervisors: ["user:sam"]
blocks:
  start: {type: start, next: check}
  check:
    type: question
    title: "Check order {{ object.number }}"
    assign: "user:kate"
    options: {ok: grade}
  grade:
    type: condition
    branches:
      - {if: "vars.grade >= 4", next: good}
    else: bad
  good: {type: end, outcome: positive}
  bad: {type: end, outcome: negative}
"""


@pytest.fixture(scope="module")
def recipe() -> Recipe:
    return load_recipe(RECIPE)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def account(request: pytest.FixtureRequest, recipe: Recipe, tmp_path: Path) -> Iterator[Account]:
    """The review process, users kate (assignee), mila (executor), sam (supervisor),
    olga (owner), ivan (a manager with no part in it) and an order o1."""
    db = None
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'tasks.db'}")
    elif request.param == "postgresql":
        db = Database(request.getfixturevalue("pg_database"))
    acc = build_account(recipe, T0, TZ, None, db)
    acc._files = LocalFileStore(tmp_path / "data")
    acc.attachment_limits = AttachmentLimits(max_bytes=1000)
    try:

        def fixtures() -> None:
            for uid, role in [
                ("kate", "manager"),
                ("mila", "manager"),
                ("sam", "manager"),
                ("olga", "owner"),
                ("ivan", "manager"),
            ]:
                acc.create_object(
                    "user",
                    {"name": uid.title(), "email": f"{uid}@shop.example", "role": role},
                    object_id=uid,
                )
            acc.create_object("order", {"number": "A-1", "status": "new"}, object_id="o1")
            spec, problems = parse_process(parse_text(PROCESS, source="p.yaml"), source="p.yaml")
            assert spec is not None, problems
            acc.deploy(Definition.build(spec, source="p.yaml"))

        _do(acc, fixtures)
        yield acc
    finally:
        acc.store.close()


def _do(account: Account, action: Callable[[], object]) -> None:
    def run() -> None:
        action()

    account.attempt(run)


def _start(account: Account, vars_: dict[str, Any] | None = None) -> TaskRecord:
    _do(account, lambda: account.start("review", "o1", vars_, by="olga"))
    return account.open_task("check", "o1", process="review")


def _snapshot(account: Account, task_id: str) -> tuple[Any, ...]:
    task = account.store.get_task(task_id)
    assert task is not None
    state = account.store.get_instance(task.instance_id)
    assert state is not None
    return (
        copy.deepcopy(task.attachments),
        copy.deepcopy(task.comments),
        copy.deepcopy(task.history),
        dict(state.vars),
        len(account.store.notifications()),
    )


def _refused(account: Account, task: TaskRecord, action: Callable[[], object], words: str) -> None:
    before = _snapshot(account, task.id)
    with pytest.raises(Refused, match=words):
        _do(account, action)
    assert _snapshot(account, task.id) == before


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# ---- attachments -----------------------------------------------------------------------


def test_attach_keeps_the_file_and_its_metadata(account: Account, tmp_path: Path) -> None:
    task = _start(account)
    got: dict[str, Any] = {}
    _do(
        account,
        lambda: got.update(account.attach(task, "../../etc/passwd/report.pdf", PDF, by="kate")),
    )
    stored = account.store.get_task(task.id)
    assert stored is not None
    [meta] = stored.attachments
    assert meta["name"] == "report.pdf"
    assert meta["size"] == len(PDF)
    assert meta["content_type"] == "application/pdf"
    assert meta["by"] == "kate"
    assert meta["id"] == got["id"] == f"{task.id}.a1"
    assert account.attachment_content(task.id, meta["id"], by="sam") == PDF
    # content-addressed under the data folder; the user's name is no part of the path
    [blob] = _files(tmp_path / "data" / "blobs")
    assert "report" not in str(blob) and blob.read_bytes() == PDF
    assert _files(tmp_path / "data" / "tmp") == []
    assert stored.history[-1]["what"] == "attachment"
    with pytest.raises(Refused, match="ivan may not read the files"):
        account.attachment_content(task.id, meta["id"], by="ivan")


@pytest.mark.parametrize(
    ("name", "content", "ctype", "words"),
    [
        ("big.pdf", b"%PDF" + b"x" * 2000, None, "over the size limit of 1000 bytes"),
        ("tool.exe", b"MZ....", None, r"type \.exe is not allowed"),
        ("noext", b"hello", None, "without an extension is not allowed"),
        ("fake.pdf", b"hello", None, r"not a \.pdf file"),
        ("script.txt", b"#!/bin/sh\nrm -rf /", None, "programs are not allowed"),
        ("a.pdf", PDF, "image/png", "does not match"),
        ("empty.txt", b"", None, "empty"),
        ("..", b"x", None, "not a usable file name"),
    ],
)
def test_attach_refusals_change_nothing(
    account: Account, tmp_path: Path, name: str, content: bytes, ctype: str | None, words: str
) -> None:
    task = _start(account)
    _refused(
        account,
        task,
        lambda: account.attach(task, name, content, by="kate", content_type=ctype),
        words,
    )
    assert _files(tmp_path / "data") == []


def _attach_as(account: Account, task: TaskRecord, who: str) -> None:
    account.attach(task, f"{who}.txt", b"hi", by=who)


def test_only_those_who_may_act_attach(account: Account, tmp_path: Path) -> None:
    task = _start(account)
    _refused(account, task, lambda: account.attach(task, "a.pdf", PDF, by="ivan"), "ivan may not")
    assert _files(tmp_path / "data") == []
    for who in ["kate", "mila", "sam", "olga"]:
        _do(account, partial(_attach_as, account, task, who))
    stored = account.store.get_task(task.id)
    assert stored is not None
    assert [a["by"] for a in stored.attachments] == ["kate", "mila", "sam", "olga"]
    # identical contents share one file
    assert len(_files(tmp_path / "data" / "blobs")) == 1


def test_a_rolled_back_request_leaves_no_file(account: Account, tmp_path: Path) -> None:
    task = _start(account)

    def attach_then_fail() -> None:
        account.attach(task, "a.pdf", PDF, by="kate")
        raise Refused("something later in the request failed")

    _refused(account, task, attach_then_fail, "something later")
    assert _files(tmp_path / "data") == []


def test_comment_with_files_notifies_and_is_in_the_history(account: Account) -> None:
    task = _start(account)
    _do(
        account,
        lambda: account.comment(task, "my homework", by="mila", files=[("hw.pdf", PDF)]),
    )
    stored = account.store.get_task(task.id)
    assert stored is not None
    [comment] = stored.comments
    assert comment["text"] == "my homework"
    assert comment["attachments"] == [stored.attachments[0]["id"]]
    notified = {m.recipient for m in account.store.notifications() if "comment" in m.subject}
    assert notified == {"kate", "sam"}
    assert [h["what"] for h in stored.history] == ["created", "attachment", "comment"]
    # a bad file refuses the whole comment
    _refused(
        account,
        task,
        lambda: account.comment(task, "again", by="mila", files=[("x.exe", b"MZ")]),
        r"\.exe is not allowed",
    )
    _refused(account, task, lambda: account.comment(task, "hi", by="ivan"), "ivan may not")


# ---- history ---------------------------------------------------------------------------


def test_history_of_every_change(account: Account) -> None:
    task = _start(account, {"grade": 5})
    _do(account, lambda: account.unclaim(task, by="kate"))
    _do(account, lambda: account.claim(task, by="mila"))
    _do(account, lambda: account.set_task_variables(task, {"note": "fine"}, by="mila"))
    _do(account, lambda: account.comment(task, "done", by="mila"))
    _do(account, lambda: account.answer(task, option="ok", fields={}, by="mila"))
    lines = account.task_history(task.id, by="sam")
    assert [(h["what"], h["by"]) for h in lines] == [
        ("created", None),
        ("unclaimed", "kate"),
        ("claimed", "mila"),
        ("variables", "mila"),
        ("comment", "mila"),
        ("answered", "mila"),
    ]
    assert lines[0]["assignee"] == "kate"
    assert lines[3]["values"] == {"note": "fine"}
    assert all(h["at"] == T0 for h in lines)
    with pytest.raises(Refused, match="ivan may not read the history"):
        account.task_history(task.id, by="ivan")


def test_cancelled_and_deleted_tasks_leave_their_trace(account: Account) -> None:
    task = _start(account)
    _do(account, lambda: account.cancel("review", "o1", by="olga"))
    lines = account.task_history(task.id)
    assert lines[-1]["what"] == "cancelled"
    _do(account, lambda: account.restart("review", by="olga"))
    assert account.store.get_task(task.id) is None
    [deleted] = [h for h in account.store.history() if h["event"] == "tasks_deleted"]
    assert task.id in deleted["details"]["tasks"] and deleted["details"]["by"] == "olga"


# ---- process variables -----------------------------------------------------------------


def test_variables_are_typed_task_fields_later_blocks_read(account: Account) -> None:
    task = _start(account)
    fields = account.task_variables(task)
    assert fields["grade"] == {"field": {"type": "number", "label": "Grade"}, "value": None}
    _do(account, lambda: account.set_task_variables(task, {"grade": "4.5"}, by="sam"))
    state = account.store.get_instance(task.instance_id)
    assert state is not None and state.vars["grade"] == 4.5
    _do(account, lambda: account.answer(task, option="ok", fields={}, by="kate"))
    state = account.store.get_instance(task.instance_id)
    assert state is not None and state.outcome == "positive"


def test_launch_forms_fill_variables(account: Account) -> None:
    task = _start(account, {"grade": "2"})
    assert account.task_variables(task)["grade"]["value"] == 2
    with pytest.raises(Refused, match="grade"):
        _do(account, lambda: account.start("review", "o1", {"grade": "many"}, by="olga"))


@pytest.mark.parametrize(
    ("who", "values", "words"),
    [
        ("ivan", {"grade": 3}, "ivan may not fill"),
        ("kate", {"grade": "many"}, "grade"),
        ("kate", {"colour": "red"}, "variable 'colour' does not exist"),
        ("kate", {}, "no variables given"),
    ],
)
def test_variable_refusals_change_nothing(
    account: Account, who: str, values: dict[str, Any], words: str
) -> None:
    task = _start(account, {"grade": 1})
    _refused(account, task, lambda: account.set_task_variables(task, values, by=who), words)


# ---- hand-made tasks -------------------------------------------------------------------


def test_add_task_by_hand(account: Account) -> None:
    got: list[TaskRecord] = []
    _do(
        account,
        lambda: got.append(
            account.add_task(
                "review",
                object_id="o1",
                title="Call the client",
                text="about the delivery",
                assignee="kate",
                priority="high",
                by="sam",
            )
        ),
    )
    [task] = got
    stored = account.store.get_task(task.id)
    assert stored is not None
    assert (stored.process, stored.assignee, stored.priority, stored.waits) == (
        "review",
        "kate",
        "high",
        False,
    )
    assert task.id in [t.id for t in account.store.find_tasks(process="review")]
    holder = account.store.get_instance(stored.instance_id)
    assert holder is not None and holder.status == MANUAL_STATUS
    assert account.task_history(task.id)[0] == {
        "at": T0,
        "by": "sam",
        "what": "created",
        "assignee": "kate",
    }
    # fields of the process, a file, then done by its assignee
    _do(account, lambda: account.set_task_variables(stored, {"note": "called"}, by="kate"))
    _do(account, lambda: account.attach(stored, "notes.txt", b"called", by="kate"))
    _do(account, lambda: account.answer(stored, option=None, fields={}, by="kate"))
    done = account.store.get_task(task.id)
    assert done is not None and done.closed and done.status == "answered"
    # the manual instance does not enter the object into the process
    started: list[str] = []
    _do(account, lambda: started.append(account.start("review", "o1", by="olga")))
    assert started


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"by": "ivan"}, "ivan may not add tasks to review"),
        ({"title": "  "}, "title: a task needs a title"),
        ({"assignee": "nobody"}, "user 'nobody' does not exist"),
        ({"priority": "asap"}, "priority 'asap' does not exist"),
        ({"object_id": "kate"}, "object kate is a user, not a order"),
    ],
)
def test_add_task_refusals_change_nothing(
    account: Account, kwargs: dict[str, Any], words: str
) -> None:
    args: dict[str, Any] = {
        "object_id": "o1",
        "title": "Call",
        "text": "",
        "assignee": "kate",
        "priority": None,
        "by": "mila",
    }
    args.update(kwargs)
    before = (len(account.store.find_tasks()), len(account.store.instances_of("review")))
    with pytest.raises(Refused, match=words):
        _do(account, lambda: account.add_task("review", **args))
    assert (len(account.store.find_tasks()), len(account.store.instances_of("review"))) == before
