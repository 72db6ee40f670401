"""Comment notifications name the attached files, and comments, claims, unclaims, status
changes and bulk reassignments leave trace entries (issue 5 item 3)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from flowlane.model.recipe import load_recipe
from flowlane.runtime.simulate import Database, build_account, simulate
from flowlane.services.account import Account
from flowlane.store.files import LocalFileStore

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "homework"
TZ = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)
PDF = b"%PDF-1.4 homework"
TITLE = "Homework: Funnels"


@pytest.fixture(params=["memory", "sqlite"])
def account(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Account]:
    """The homework of the client anna (anna@example.com), supervised by the owner olga."""
    db = Database(f"sqlite:///{tmp_path / 'c.db'}") if request.param == "sqlite" else None
    acc = build_account(load_recipe(RECIPE), T0, TZ, None, db)
    acc._files = LocalFileStore(tmp_path / "data")
    try:

        def fixtures() -> None:
            olga = {"name": "Olga", "email": "olga@school.example", "role": "owner"}
            acc.create_object("user", olga, object_id="olga")
            anna = {"name": "Anna", "email": "anna@example.com"}
            acc.create_object("user", anna, object_id="anna")
            acc.start("homework", "anna", {"topic": "Funnels"}, by="olga")

        acc.attempt(fixtures)
        yield acc
    finally:
        acc.store.close()


@pytest.mark.parametrize(
    ("text", "files", "subject", "body"),
    [
        ("", [("hw.pdf", PDF)], f"New file on task: {TITLE}", "Attached: hw.pdf"),
        (
            "  ",
            [("hw.pdf", PDF), ("notes.txt", b"n")],
            f"New files on task: {TITLE}",
            "Attached: hw.pdf, notes.txt",
        ),
        (
            "Here it is",
            [("hw.pdf", PDF)],
            f"New comment on task: {TITLE}",
            "Here it is\n\nAttached: hw.pdf",
        ),
        ("Just words", [], f"New comment on task: {TITLE}", "Just words"),
    ],
)
def test_the_notification_names_the_files(
    account: Account, text: str, files: list[tuple[str, bytes]], subject: str, body: str
) -> None:
    task = account.open_task("homework", "anna", process="homework")
    account.attempt(lambda: account.comment(task, text, by="anna", files=files))
    [notice] = account.store.notifications()
    assert (notice.to, notice.recipient, notice.channel) == ("olga@school.example", "olga", "email")
    assert (notice.subject, notice.body) == (subject, body)


SCENARIO = """
name: Task work leaves a trace
clock: 2026-03-02T10:00:00+03:00
objects:
  - {type: user, id: olga, data: {name: Olga, email: olga@school.example, role: owner}}
  - {type: user, id: mia, data: {name: Mia, email: mia@school.example, role: manager}}
  - {type: user, id: anna, data: {name: Anna, email: anna@example.com, personal_manager: mia}}
steps:
  - start: {process: homework, object: anna, by: olga, vars: {topic: Funnels}}
  - comment: {block: homework, object: anna, by: anna, text: "Here it is"}
  - comment: {block: homework, object: anna, by: mia, text: "not mine to say"}
  - status: {block: homework, object: anna, to: in_progress, by: anna}
  - start: {process: homework-review, object: anna, by: olga}
  - unclaim: {block: review, object: anna, by: mia}
  - claim: {block: review, object: anna, by: mia}
  - reassign: {process: homework-review, to: olga, by: olga}
  - expect:
      open_tasks:
        - {block: homework, object: anna, assignee: anna, status: in_progress}
        - {block: review, object: anna, assignee: olga}
"""


def _task_lines(trace: list[dict[str, Any]]) -> list[tuple[str, str | None, dict[str, Any]]]:
    """The task lines: event, block and details (the task's id as its block's name)."""
    wanted = ("task_commented", "task_status", "task_claimed", "task_unclaimed")
    tasks = {
        line["details"]["task"]: line["block"] for line in trace if line["event"] == "task_opened"
    }
    out = []
    for line in trace:
        if line["event"] in (*wanted, "tasks_reassigned"):
            details = dict(line["details"])
            if "task" in details:
                assert tasks[details["task"]] == line["block"]
                details["task"] = line["block"]
            out.append((line["event"], line["block"], details))
    return out


def test_task_work_is_traced(tmp_path: Path) -> None:
    path = tmp_path / "trace.yaml"
    path.write_text(textwrap.dedent(SCENARIO))
    result = simulate(RECIPE, path)
    assert result.ok, result.message
    home, review = "homework", "review"
    assert _task_lines(result.trace) == [
        ("task_commented", home, {"task": home, "by": "anna", "comment": 1, "files": []}),
        ("task_status", home, {"task": home, "from": "new", "to": "in_progress", "by": "anna"}),
        ("task_unclaimed", review, {"task": review, "by": "mia", "assignee": "mia"}),
        ("task_claimed", review, {"task": review, "by": "mia"}),
        (
            "tasks_reassigned",
            None,
            {"process": "homework-review", "to": "olga", "by": "olga", "count": 1},
        ),
    ]
    # the refused comment left a refused line, not a task_commented one
    [refused] = [line for line in result.trace if line["event"] == "refused"]
    assert "mia may not comment on task" in refused["details"]["reason"]
    db = tmp_path / "trace.db"
    durable = simulate(RECIPE, path, db=Database(f"sqlite:///{db}"))
    assert durable.trace == result.trace
