"""Permissions are enforced in the services (``services/permissions.py``), whoever calls."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flowlane.core.errors import Forbidden
from flowlane.services import permissions
from flowlane.services.account import Account
from flowlane.store.records import TaskRecord

MakeAccount = Callable[[], Account]


def review_task(account: MakeAccount, manager: str) -> TaskRecord:
    """A ``homework-review`` task assigned to ``manager`` (the client's personal manager)."""
    acc = account()
    box: list[str] = []

    def setup() -> None:
        uid = acc.create_object(
            "user", {"name": f"Client of {manager}", "personal_manager": manager}
        )
        acc.start("homework-review", uid, by="owner")
        box.append(uid)

    acc.attempt(setup)
    return acc.open_task("review", box[0])


def test_the_table_gives_each_role_its_actions() -> None:
    assert permissions.actions_for("owner") == frozenset(permissions.ACTIONS)
    assert permissions.actions_for("admin") == frozenset(permissions.ACTIONS)
    assert "work_with_tasks" in permissions.actions_for("manager")
    assert "manage_processes" not in permissions.actions_for("manager")
    assert "work_with_tasks" not in permissions.actions_for("employee")
    assert "work_with_tasks" in permissions.actions_for("employee", ("work_with_tasks",))
    assert "work_with_tasks" not in permissions.actions_for("client", ("work_with_tasks",))
    assert permissions.actions_for("client") == frozenset({"own_cabinet"})


def test_an_employee_without_the_permission_may_not_work_on_tasks(account: MakeAccount) -> None:
    task = review_task(account, "employee-plain")
    acc = account()
    for act in (
        lambda: acc.claim(task, by="employee-plain"),
        lambda: acc.comment(task, "done?", by="employee-plain"),
        lambda: acc.change_status(task, "done", by="employee-plain"),
    ):
        with pytest.raises(Forbidden, match="work_with_tasks"):
            acc.attempt(act)
    assert not acc.store.get_task(task.id).closed  # type: ignore[union-attr]
    acc.attempt(lambda: acc.comment(task, "a manager may", by="manager"))


def test_an_employee_with_the_permission_works_on_own_tasks(account: MakeAccount) -> None:
    task = review_task(account, "employee")
    acc = account()
    acc.attempt(lambda: acc.comment(task, "on it", by="employee"))
    acc.attempt(lambda: acc.change_status(task, "done", by="employee"))
    assert acc.store.get_task(task.id).closed  # type: ignore[union-attr]


def test_a_client_may_not_act_on_the_tasks_of_others(account: MakeAccount) -> None:
    task = review_task(account, "manager")
    acc = account()
    with pytest.raises(Forbidden):
        acc.attempt(lambda: acc.comment(task, "hello", by="client"))


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("owner", True), ("admin", True), ("manager", True), ("employee", False), ("client", False)],
)
def test_who_may_start_a_process(account: MakeAccount, role: str, allowed: bool) -> None:
    acc = account()
    if allowed:
        acc.attempt(lambda: acc.start("homework-review", "client", by=role))
        assert acc.store.instances_of("homework-review", "client")
    else:
        with pytest.raises(Forbidden, match=f"{role} \\(\\w+\\) may not start"):
            acc.attempt(lambda: acc.start("homework-review", "client", by=role))


@pytest.mark.parametrize("role", ["manager", "employee", "client"])
def test_only_owners_and_admins_manage_processes(account: MakeAccount, role: str) -> None:
    acc = account()
    with pytest.raises(Forbidden, match="may not stop"):
        acc.attempt(lambda: acc.stop_process("homework-review", by=role))
    with pytest.raises(Forbidden, match="may not add group"):
        acc.attempt(lambda: acc.add_group("new-group", by=role))
    acc.attempt(lambda: acc.stop_process("homework-review", by="admin"))
