"""Message recipients computed by an expression: users, addresses, and ``user:`` /
``group:`` / ``role:`` selectors (the broadcast of S1.3 names its group in a variable)."""

from __future__ import annotations

from tests.support import RunScenario, assert_ok, scenario

TELL = """
key: tell
name: tell
object: order
variables:
  group: {type: string}
blocks:
  start: {type: start, next: m}
  m: {type: message, to: "='group:' + vars.group", subject: Hi, body: x, next: many}
  many: {type: message, to: "=['role:manager', 'user:anna', 'role:manager']", subject: Many,
         body: x}
"""


def test_an_expression_may_name_a_group_a_role_or_a_user(run_scenario: RunScenario) -> None:
    steps = """
  - update: {object: anna, set: {groups: [vip]}}
  - update: {object: olga, set: {groups: [vip]}}
  - start: {process: tell, object: o1, vars: {group: vip}}
  - expect:
      messages:
        - {to: anna@example.com, subject_contains: Hi}
        - {to: olga@shop.example, subject_contains: Hi}
        - {to: boris@shop.example, subject_contains: Many}
        - {to: anna@example.com, subject_contains: Many}
  - start: {process: tell, object: o1, vars: {group: nobody}}
  - expect:
      message_count: 2
      ended: {process: tell, object: o1, outcome: neutral}
"""
    assert_ok(run_scenario({"tell": TELL}, scenario(steps), objects="groups: [vip]\n"))


def test_a_selector_of_an_unknown_kind_is_still_an_address_error(
    run_scenario: RunScenario,
) -> None:
    proc = TELL.replace("\"='group:' + vars.group\"", "\"='team:' + vars.group\"")
    steps = """
  - start: {process: tell, object: o1, vars: {group: vip}}
  - expect: {incident: {process: tell, object: o1, contains: "recipient 'team:vip'"}}
"""
    assert_ok(run_scenario({"tell": proc}, scenario(steps)))
