"""``{{ task_link }}`` in a message with ``reply_to_task``: the page of that task (made from
the public URL, printed as it is); without ``reply_to_task`` it renders empty."""

from __future__ import annotations

from tests.support import RunScenario, assert_ok, scenario

from flowlane.services.links import public_url_from_env

PROC = """
key: hw
name: hw
object: user
blocks:
  start: {type: start, next: both}
  both: {type: fork, next: [homework, notify, plain]}
  homework: {type: task, title: Do it, assign: "=object", wait: true}
  notify: {type: message, to: client, reply_to_task: homework, subject: "Link {{ task_link }}",
           body: "Open {{ task_link }}"}
  plain: {type: message, to: client, subject: "Plain [{{ task_link }}]", body: x}
"""


def test_task_link_is_the_page_of_the_reply_task(run_scenario: RunScenario) -> None:
    url = public_url_from_env()
    steps = f"""
  - start: {{process: hw, object: anna}}
  - expect:
      open_tasks: [{{block: homework, object: anna, assignee: anna}}]
      messages:
        - {{to: anna@example.com, subject_contains: "Link {url}/tasks/i1.t"}}
        - {{to: anna@example.com, subject_contains: "Plain []"}}
"""
    assert_ok(run_scenario({"hw": PROC}, scenario(steps)))
