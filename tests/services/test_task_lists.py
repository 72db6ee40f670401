"""A person's inbox, the process's task table, tasks of an object and of a client, the task
statistics and the filtered reassignment, on every store (issue 5, items 1, 5 and 6)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
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
from flowlane.store.records import TaskRecord

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "launches"
TZ = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)

CALLS = """
key: calls
name: Call the client
object: order
task:
  executors: ["user:mila"]
  supervisors: ["user:sam"]
  priority: {priority}
  reaction: {reaction}
  inbox: {inbox}
blocks:
  start: {{type: start, next: call}}
  call:
    type: question
    title: "Call about {{{{ object.number }}}}"
    {assign}
    options: {{done: finish}}
  finish: {{type: end}}
"""


def _process(key: str, **kw: str) -> Definition:
    text = CALLS.replace("key: calls", f"key: {key}").format(**kw)
    spec, problems = parse_process(parse_text(text, source="p.yaml"), source="p.yaml")
    assert spec is not None, problems
    return Definition.build(spec, source=f"{key}.yaml")


@pytest.fixture(scope="module")
def recipe() -> Recipe:
    return load_recipe(RECIPE)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def account(request: pytest.FixtureRequest, recipe: Recipe, tmp_path: Path) -> Iterator[Account]:
    """kate and mila (managers, mila an executor of ``calls``), sam (its supervisor), olga
    (owner), ivan (no part), anna (a client); orders o1, o2 of anna and o3 of nobody.

    ``calls``: urgent, 1 hour, unassigned; ``follow``: low, 1 day, kate's; ``quiet``: kate's
    but ``inbox: false``. Opened: calls on o1 at T0 and o3 at T0 + 1 h, follow on o2 at T0."""
    db = None
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'lists.db'}")
    elif request.param == "postgresql":
        db = Database(request.getfixturevalue("pg_database"))
    acc = build_account(recipe, T0, TZ, None, db)
    try:

        def fixtures() -> None:
            for uid, role in [
                ("kate", "manager"),
                ("mila", "manager"),
                ("sam", "manager"),
                ("olga", "owner"),
                ("ivan", "manager"),
                ("anna", "client"),
            ]:
                acc.create_object(
                    "user",
                    {"name": uid.title(), "email": f"{uid}@shop.example", "role": role},
                    object_id=uid,
                )
            for oid, client in [("o1", "anna"), ("o2", "anna"), ("o3", None)]:
                data = {"number": oid.upper(), "status": "new"}
                if client:
                    data["client"] = client
                acc.create_object("order", data, object_id=oid)
            acc.deploy(_process("calls", priority="urgent", reaction="1h", inbox="true", assign=""))
            kate = 'assign: "user:kate"'
            acc.deploy(_process("follow", priority="low", reaction="1d", inbox="true", assign=kate))
            acc.deploy(
                _process("quiet", priority="high", reaction="1h", inbox="false", assign=kate)
            )

        _do(acc, fixtures)
        _do(acc, lambda: acc.start("calls", "o1", None, by="olga"))
        _do(acc, lambda: acc.start("follow", "o2", None, by="olga"))
        _do(acc, lambda: acc.start("quiet", "o2", None, by="olga"))
        acc.runner.now = T0 + timedelta(hours=1)
        _do(acc, lambda: acc.start("calls", "o3", None, by="olga"))
        acc.runner.now = T0 + timedelta(hours=2)
        yield acc
    finally:
        acc.store.close()


def _do(account: Account, action: Callable[[], object]) -> None:
    def run() -> None:
        action()

    account.attempt(run)


def _titles(tasks: list[TaskRecord]) -> list[str]:
    return [t.title for t in tasks]


def test_inbox_order_flag_and_executors(account: Account) -> None:
    # kate: follow (low, due tomorrow); quiet is hidden (inbox: false)
    assert _titles(account.inbox("kate", by="kate").tasks) == ["Call about O2"]
    # mila, an executor of calls: its unassigned tasks; O1 overdue (due T0 + 1 h)
    # first, then O3, due exactly now: not overdue
    assert _titles(account.inbox("mila").tasks) == ["Call about O1", "Call about O3"]
    account.runner.now = T0 + timedelta(hours=2, seconds=1)
    assert _titles(account.inbox("mila").tasks) == ["Call about O1", "Call about O3"]
    page = account.inbox("mila", page=2, size=1)
    assert _titles(page.tasks) == ["Call about O3"] and page.page == 2
    assert account.inbox("ivan").tasks == []


def test_who_may_look_at_an_inbox(account: Account) -> None:
    assert len(account.inbox("kate", by="sam").tasks) == 1  # a supervisor
    assert len(account.inbox("kate", by="olga").tasks) == 1  # the owner
    with pytest.raises(Refused, match="ivan may not look at the inbox of kate"):
        account.inbox("kate", by="ivan")
    with pytest.raises(Refused, match="page must be 1 or more"):
        account.inbox("kate", page=0)
    with pytest.raises(Refused, match="size must be between"):
        account.inbox("kate", size=10_000)


def test_process_task_table(account: Account) -> None:
    table = account.process_tasks("calls", by="sam")
    assert _titles(table.tasks) == ["Call about O1", "Call about O3"] and table.total == 2
    table = account.process_tasks("calls", sort="created_at", descending=True, size=1, by="olga")
    assert _titles(table.tasks) == ["Call about O3"] and table.total == 2
    assert account.process_tasks("calls", object_id="o3").total == 1
    assert account.process_tasks("calls", unassigned=True).total == 2
    assert account.process_tasks("calls", assignee="kate").total == 0
    window = account.process_tasks("calls", created_from=T0 + timedelta(minutes=30))
    assert _titles(window.tasks) == ["Call about O3"]
    with pytest.raises(Refused, match="ivan may not list the tasks of process 'calls'"):
        account.process_tasks("calls", by="ivan")
    with pytest.raises(Refused, match="sort must be one of"):
        account.process_tasks("calls", sort="title")
    with pytest.raises(Refused, match="created_to must not be before created_from"):
        account.process_tasks("calls", created_from=T0, created_to=T0 - timedelta(days=1))
    with pytest.raises(Refused, match="not both"):
        account.process_tasks("calls", assignee="kate", unassigned=True)


def test_tasks_of_an_object_and_of_a_client(account: Account) -> None:
    def ids(tasks: list[TaskRecord]) -> list[str]:
        return [t.id for t in tasks]

    on_o2 = account.object_tasks("o2", by="kate")
    assert ids(on_o2) == ids(account.store.find_tasks(object_id="o2"))
    assert _titles(on_o2).count("Call about O2") == 2  # follow and quiet
    every = account.store.find_tasks()
    of_anna = [t.id for t in every if t.object_id in ("o1", "o2")]
    assert ids(account.client_tasks("anna", by="olga")) == of_anna  # her card, for staff
    assert "Call about O1" in _titles(account.client_tasks("anna", by="olga"))
    # the staff's tasks about her orders are not hers to see
    assert account.client_tasks("anna", by="anna") == []
    assert account.client_tasks("kate") == []
    with pytest.raises(Refused, match="anna \\(client\\) may not list the tasks of o3"):
        account.object_tasks("o3", by="anna")
    with pytest.raises(Refused, match="anna \\(client\\) may not list the tasks of olga"):
        account.client_tasks("olga", by="anna")


def test_statistics_and_filtered_reassignment(account: Account) -> None:
    stats = account.task_statistics("calls", by="sam")
    assert stats.total == 2
    assert [(r.assignee, r.status, r.day, r.count) for r in stats.rows] == [
        (None, "open", date(2026, 3, 2), 2)
    ]
    with pytest.raises(Refused, match="ivan may not see the task statistics"):
        account.task_statistics("calls", by="ivan")
    moved: list[int] = []
    _do(
        account,
        lambda: moved.append(
            account.reassign(
                "calls",
                from_=None,
                status=None,
                to="kate",
                by="olga",
                created_from=T0 + timedelta(minutes=30),
            )
        ),
    )
    assert moved == [1]
    stats = account.task_statistics("calls", by="olga")
    assert stats.by_assignee == {"kate": 1, None: 1} and stats.by_status == {"open": 2}
    assert _titles(account.inbox("kate").tasks) == ["Call about O3", "Call about O2"]
    assert account.task_statistics("calls", assignee="kate").total == 1


def test_inbox_total_counts_the_whole_inbox(account: Account) -> None:
    first = account.inbox("mila", size=1)
    assert len(first.tasks) == 1 and first.total == 2  # a full page: counted
    last = account.inbox("mila", page=2, size=1)
    assert len(last.tasks) == 1 and last.total == 2
    beyond = account.inbox("mila", page=3, size=1)
    assert beyond.tasks == [] and beyond.total == 2
    assert account.inbox("mila").total == 2  # one short page
    assert account.inbox("kate", size=1).total == 1
    assert account.inbox("ivan").total == 0


PARENT = """
key: parent
name: Parent
object: order
task:
  executors: ["user:ivan"]
  supervisors: ["user:kate"]
blocks:
  start: {type: start, next: sub}
  sub: {type: subprocess, process: child, next: finish}
  finish: {type: end}
"""

CHILD = """
key: child
name: Child (no task settings)
object: order
blocks:
  start: {type: start, next: check}
  check:
    type: question
    title: "Check {{ object.number }}"
    options: {done: finish}
  finish: {type: end}
"""


def _deploy_text(account: Account, text: str) -> None:
    spec, problems = parse_process(parse_text(text, source="p.yaml"), source="p.yaml")
    assert spec is not None, problems
    account.deploy(Definition.build(spec, source=f"{spec.key}.yaml"))


def test_sub_process_tasks_belong_to_the_parents_executors(account: Account) -> None:
    def setup() -> None:
        _deploy_text(account, CHILD)
        _deploy_text(account, PARENT)

    _do(account, setup)
    assert account.inbox("ivan").tasks == []
    _do(account, lambda: account.start("parent", "o3", None, by="olga"))
    page = account.inbox("ivan")
    assert _titles(page.tasks) == ["Check O3"] and page.total == 1
    assert page.tasks[0].process == "child" and page.tasks[0].assignee is None
    # mila (an executor of calls only) does not get it; ivan may take it
    assert "Check O3" not in _titles(account.inbox("mila").tasks)
    _do(account, lambda: account.claim(account.open_task("check", "o3"), by="ivan"))
    assert account.open_task("check", "o3").assignee == "ivan"
    # kate, the parent's supervisor, oversees the child's tasks; sam does not
    assert account.task_statistics("child", by="kate").total == 1
    assert account.process_tasks("child", by="kate").total == 1
    with pytest.raises(Refused, match="sam may not see the task statistics of process 'child'"):
        account.task_statistics("child", by="sam")


def test_supervisors_reassign_in_bulk_and_others_are_refused(account: Account) -> None:
    before = {t.id: (t.assignee, list(t.history)) for t in account.store.find_tasks()}
    # ivan (a manager, no part) and kate (a supervisor of another process) may not
    for who in ("ivan", "kate", "anna"):
        with pytest.raises(Refused, match=f"{who} \\(\\w+\\) may not reassign tasks of calls"):
            _do(
                account,
                partial(account.reassign, "calls", from_=None, status=None, to="kate", by=who),
            )
    assert {t.id: (t.assignee, t.history) for t in account.store.find_tasks()} == before
    moved: list[int] = []
    _do(
        account,
        lambda: moved.append(
            account.reassign("calls", from_=None, status=None, to="mila", by="sam")
        ),
    )
    assert moved == [2]
    calls = account.process_tasks("calls", by="sam").tasks
    assert {t.assignee for t in calls} == {"mila"}
    history = account.task_history(calls[0].id, by="sam")
    assert history[-1] == {"at": account.now, "by": "sam", "what": "reassigned", "to": "mila"}
    # again: mila holds them already, nothing changes; then reset to nobody
    _do(
        account,
        lambda: moved.append(
            account.reassign("calls", from_="mila", status=None, to="mila", by="sam")
        ),
    )
    _do(
        account,
        lambda: moved.append(
            account.reassign("calls", from_="mila", status=None, to=None, by="sam")
        ),
    )
    assert moved == [2, 0, 2]
    stats = account.task_statistics("calls", by="sam")
    assert stats.by_assignee == {None: 2}
    assert len(account.task_history(calls[0].id)) == len(history) + 1


def test_reassign_filters_status_object_and_window(account: Account) -> None:
    moved: list[int] = []

    def run(**kw: Any) -> None:
        args: dict[str, Any] = {"from_": None, "status": None, "to": "kate", "by": "olga"}
        args.update(kw)
        _do(account, lambda: moved.append(account.reassign("calls", **args)))

    run(object_id="o1")
    run(status="answered")  # none of them is answered
    run(from_="sam", from_given=True)  # sam holds none
    run(from_=None, from_given=False, created_to=T0 + timedelta(minutes=30))  # kate has o1
    run(from_=None, from_given=False, to="mila")  # both, whoever holds them
    assert moved == [1, 0, 0, 0, 2]
    with pytest.raises(Refused, match="created_to must not be before created_from"):
        run(created_from=T0, created_to=T0 - timedelta(hours=1))
    with pytest.raises(Refused, match="user 'nobody' does not exist"):
        run(to="nobody")
    assert account.task_statistics("calls").by_assignee == {"mila": 2}
