"""Who may act on a task (FORMATS.md "Who may act on a task", issue 5 item 1): every task
action against every kind of person, on the memory store, SQLite and PostgreSQL.

Allowed: the assignee, the process's executors and supervisors, admins and owners; a
workflow's status change only by its transition's ``by``; a bulk reassignment by admins,
owners and the process's supervisors. Everyone else is refused and nothing changes: not the
task, not the instance, not the trace, not the outbox, not the notifications, not the files
on disk.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tests.pg import fresh_database

from flowlane.core.errors import Refused
from flowlane.model.definition import Definition
from flowlane.model.recipe import load_recipe, parse_process
from flowlane.model.yamlio import parse_text
from flowlane.runtime.simulate import Database, build_account
from flowlane.services.account import Account
from flowlane.store.files import LocalFileStore
from flowlane.store.records import TaskRecord

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "launches"
TZ = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)

SETTINGS = """
object: user
variables:
  note: {type: string}
task:
  executors: ["user:mila"]
  supervisors: ["user:sam"]
"""
PROCESSES = {
    # a question assigned to kate
    "work": """
blocks:
  start: {type: start, next: ask}
  ask: {type: question, title: "Check {{ object.name }}", assign: "user:kate", options: {ok: done}}
  done: {type: end, outcome: positive}
""",
    # the same, assigned to nobody (to be claimed)
    "free": """
blocks:
  start: {type: start, next: ask}
  ask: {type: question, title: "Check {{ object.name }}", options: {ok: done}}
  done: {type: end, outcome: positive}
""",
    # a status workflow: only the assignee starts the work
    "flow": """
blocks:
  start: {type: start, next: ask}
  ask:
    type: task
    title: "Do {{ object.name }}"
    assign: "user:kate"
    wait: true
    workflow:
      statuses: [new, in_progress, done]
      initial: new
      final: [done]
      transitions:
        - {from: new, to: in_progress, by: assignee}
        - {from: in_progress, to: done, by: "role:owner"}
    next: done
  done: {type: end, outcome: positive}
""",
}

STAFF = {"kate": "manager", "mila": "manager", "sam": "manager", "adam": "admin"}
STAFF |= {"olga": "owner", "ivan": "manager"}

PEOPLE = ("assignee", "executor", "supervisor", "admin", "owner", "other", "client", "stranger")
PEOPLE += ("none",)
"""Kinds of person: kate (the assignee), mila (an executor), sam (a supervisor), adam (an
admin), olga (the owner), ivan (a manager who is none of these), the client the task's
object is (not its assignee), ghost (no such user) and ``by=None`` (the system)."""

# Y: allowed, n: refused, -: the API takes no None for ``by``.
#                           asg exe sup adm own oth cli str none
TABLE = """
answer                       Y   Y   Y   Y   Y   n   n   n   Y
claim         (own task)     Y   n   n   n   n   n   n   n   -
claim_free    (nobody's)     n   Y   Y   Y   Y   n   n   n   -
unclaim                      Y   n   Y   Y   Y   n   n   n   -
comment                      Y   Y   Y   Y   Y   n   n   n   Y
attach                       Y   Y   Y   Y   Y   n   n   n   Y
attachment_content           Y   Y   Y   Y   Y   n   n   n   Y
task_history                 Y   Y   Y   Y   Y   n   n   n   Y
task_variables               Y   Y   Y   Y   Y   n   n   n   Y
set_task_variables           Y   Y   Y   Y   Y   n   n   n   Y
change_status (by assignee)  Y   n   n   n   n   n   n   n   n
reassign      (bulk)         n   n   Y   Y   Y   n   n   n   Y
"""


def _cases() -> list[Any]:
    out = []
    for row in TABLE.strip().splitlines():
        action, *rest = row.split()
        marks = [m for m in rest if m in ("Y", "n", "-")]
        assert len(marks) == len(PEOPLE), row
        for person, mark in zip(PEOPLE, marks, strict=True):
            if mark != "-":
                out.append(pytest.param(action, person, mark == "Y", id=f"{action}-{person}"))
    return out


PDF = b"%PDF-1.4 notes"


@dataclass
class World:
    account: Account
    data: Path
    ids: Iterator[int]


@pytest.fixture(scope="module", params=["memory", "sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One account per store for the whole table; every case works on a client of its own."""
    root = tmp_path_factory.mktemp(f"perm-{request.param}")
    with _database(request, root) as db:
        acc = build_account(load_recipe(RECIPE), T0, TZ, None, db)
        acc._files = LocalFileStore(root / "data")
        try:

            def fixtures() -> None:
                for uid, role in STAFF.items():
                    acc.create_object("user", {"name": uid.title(), "role": role}, object_id=uid)
                for key, blocks in PROCESSES.items():
                    text = f"key: {key}\nname: {key}\n{SETTINGS}{blocks}"
                    spec, problems = parse_process(parse_text(text, source=key), source=key)
                    assert spec is not None, problems
                    acc.deploy(Definition.build(spec, source=key))

            acc.attempt(fixtures)
            yield World(acc, root / "data", itertools.count(1))
        finally:
            acc.store.close()


class _database:
    """The ``Database`` a store parameter runs on (None: in memory)."""

    def __init__(self, request: pytest.FixtureRequest, root: Path):
        self.request, self.root = request, root
        self.pg: Any = None

    def __enter__(self) -> Database | None:
        if self.request.param == "sqlite":
            return Database(f"sqlite:///{self.root / 'perm.db'}")
        if self.request.param == "postgresql":
            self.pg = fresh_database(self.request.getfixturevalue("pg_admin_url"))
            return Database(self.pg.__enter__())
        return None

    def __exit__(self, *exc: object) -> None:
        if self.pg is not None:
            self.pg.__exit__(None, None, None)


def _who(person: str, client: str) -> str | None:
    ids = {"assignee": "kate", "executor": "mila", "supervisor": "sam", "admin": "adam"}
    ids |= {"owner": "olga", "other": "ivan", "client": client, "stranger": "ghost"}
    return None if person == "none" else ids[person]


def _prepare(w: World, action: str) -> tuple[str, TaskRecord]:
    """A client of the case's own and the task the action works on."""
    acc = w.account
    client = f"client{next(w.ids)}"
    process = {"claim_free": "free", "change_status": "flow"}.get(action, "work")

    def run() -> None:
        acc.create_object("user", {"name": client.title(), "role": "client"}, object_id=client)
        acc.start(process, client, {"note": "first"}, by="olga")

    acc.attempt(run)
    task = acc.open_task("ask", client, process=process)
    if action == "attachment_content":
        acc.attempt(lambda: _attach_notes(acc, task))
    stored = acc.store.get_task(task.id)
    assert stored is not None
    return client, stored


def _attach_notes(acc: Account, task: TaskRecord) -> None:
    acc.attach(task, "notes.pdf", PDF, by="olga")


def _act(acc: Account, action: str, task: TaskRecord, by: str | None, client: str) -> Any:
    """Run the action as one request; what it returned."""
    got: list[Any] = []
    calls: dict[str, Callable[[], Any]] = {
        "answer": lambda: acc.answer(task, option="ok", fields={}, by=by),
        "claim": lambda: acc.claim(task, by=by),  # type: ignore[arg-type]
        "claim_free": lambda: acc.claim(task, by=by),  # type: ignore[arg-type]
        "unclaim": lambda: acc.unclaim(task, by=by),  # type: ignore[arg-type]
        "comment": lambda: acc.comment(task, "a word", by=by, files=[("c.txt", b"hello")]),
        "attach": lambda: acc.attach(task, "more.txt", b"more bytes", by=by),
        "attachment_content": lambda: acc.attachment_content(task.id, f"{task.id}.a1", by=by),
        "task_history": lambda: acc.task_history(task.id, by=by),
        "task_variables": lambda: acc.task_variables(task, by=by),
        "set_task_variables": lambda: acc.set_task_variables(task, {"note": "second"}, by=by),
        "change_status": lambda: acc.change_status(task, "in_progress", by=by),
        "reassign": lambda: acc.reassign(
            task.process,
            from_=None,
            from_given=False,
            status=None,
            to="mila",
            by=by,
            object_id=client,
        ),
    }
    acc.attempt(lambda: got.append(calls[action]()))
    return got[0]


def _files(root: Path) -> list[tuple[str, int]]:
    if not root.exists():
        return []
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*.*"))


def _snapshot(w: World, task_id: str) -> tuple[Any, ...]:
    store = w.account.store
    task = store.get_task(task_id)
    assert task is not None
    state = store.get_instance(task.instance_id)
    assert state is not None
    return (
        copy.deepcopy(task),
        copy.deepcopy(state.vars),
        state.status,
        len(list(store.history())),
        len(store.messages()),
        len(store.notifications()),
        _files(w.data),
    )


@pytest.mark.parametrize(("action", "person", "allowed"), _cases())
def test_who_may_act(world: World, action: str, person: str, allowed: bool) -> None:
    acc = world.account
    client, task = _prepare(world, action)
    by = _who(person, client)
    before = _snapshot(world, task.id)
    if not allowed:
        with pytest.raises(Refused) as refused:
            _act(acc, action, task, by, client)
        assert str(refused.value)
        assert _snapshot(world, task.id) == before
        return
    got = _act(acc, action, task, by, client)
    after = acc.store.get_task(task.id)
    assert after is not None
    _check_effect(acc, action, after, by, got)


def _check_effect(acc: Account, action: str, task: TaskRecord, by: str | None, got: Any) -> None:
    last = task.history[-1]
    if action == "answer":
        assert task.closed and task.answer is not None and task.answer["by"] == by
    elif action in ("claim", "claim_free"):
        assert task.assignee == by and last == {"at": T0, "by": by, "what": "claimed"}
    elif action == "unclaim":
        assert task.assignee is None and last["what"] == "unclaimed" and last["by"] == by
    elif action == "comment":
        assert task.comments[-1]["by"] == by and task.attachments[-1]["name"] == "c.txt"
    elif action == "attach":
        assert got["by"] == by and task.attachments[-1]["name"] == "more.txt"
    elif action == "attachment_content":
        assert got == PDF
    elif action == "task_history":
        assert [h["what"] for h in got] == ["created"]
    elif action == "task_variables":
        assert got["note"]["value"] == "first"
    elif action == "set_task_variables":
        state = acc.store.get_instance(task.instance_id)
        assert state is not None and state.vars["note"] == "second" and last["by"] == by
    elif action == "change_status":
        assert task.status == "in_progress" and last["by"] == by
    else:
        assert action == "reassign"
        assert got == 1 and task.assignee == "mila" and last["what"] == "reassigned"


def test_the_table_covers_every_action_and_person() -> None:
    actions = {p.values[0] for p in _cases()}
    assert len(actions) == len(TABLE.strip().splitlines()) == 12
    assert {p.values[1] for p in _cases()} == set(PEOPLE)


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ("answered", "is answered already"),
        ("unclaimed", "assigned to nobody"),
    ],
)
def test_unclaim_refuses_a_closed_or_free_task(world: World, setup: str, words: str) -> None:
    acc = world.account
    _, task = _prepare(world, "unclaim")
    if setup == "answered":
        acc.attempt(lambda: acc.answer(task, option="ok", fields={}, by="kate"))
    else:
        acc.attempt(lambda: acc.unclaim(task, by="kate"))
    before = _snapshot(world, task.id)
    with pytest.raises(Refused, match=words):
        acc.attempt(lambda: acc.unclaim(task, by="olga"))
    assert _snapshot(world, task.id) == before
