"""Execution rules found wanting in review, each pinned by a scenario."""

from __future__ import annotations

import pytest
from tests.support import RunScenario, assert_ok, scenario

from flowlane.services.runner import Runner


def test_passwords_are_hashed_unreadable_and_redacted(run_scenario: RunScenario) -> None:
    proc = """
    key: welcome
    name: welcome
    object: order
    blocks:
      start: {type: start, next: pw}
      pw: {type: operation, generate_password: {as: secret}, next: make}
      make:
        type: operation
        create: {type: user, as: student, data: {name: Stu, email: stu@example.com,
                                                  password: "=vars.secret"}}
        next: mail
      mail: {type: message, to: "=vars.student", subject: "Password {{ vars.secret }}",
             body: "Stored: [{{ object.client.password }}]"}
    """
    steps = """
  - update: {object: anna, set: {password: hunter2-long}}
  - start: {process: welcome, object: o1}
  - expect: {messages: [{to: stu@example.com, subject_contains: Password}]}
"""
    result = run_scenario({"welcome": proc}, scenario(steps))
    assert_ok(result)
    sent = [line for line in result.trace if line["event"] == "message_sent"]
    assert sent and sent[0]["details"]["subject"] == "Password ***"
    assert "hunter2" not in str(result.trace)


def test_templates_cannot_change_state_or_run_away(run_scenario: RunScenario) -> None:
    proc = """
    key: evil
    name: evil
    object: order
    counters: [n]
    blocks:
      start: {type: start, next: one}
      one: {type: message, to: client, subject: "{{ counters.update({'n': 42}) }}", body: x}
    """
    steps = """
  - start: {process: evil, object: o1}
  - expect:
      incident: {process: evil, object: o1, contains: unsafe}
      counters: {process: evil, object: o1, values: {n: 0}}
      message_count: 0
"""
    assert_ok(run_scenario({"evil": proc}, scenario(steps)))
    power = proc.replace("counters.update({'n': 42})", "9 ** 999999999")
    steps = """
  - start: {process: evil, object: o1}
  - expect: {incident: {process: evil, object: o1, contains: too large}}
"""
    assert_ok(run_scenario({"evil": power}, scenario(steps)))


def test_for_each_without_wait_leaves_children_running(run_scenario: RunScenario) -> None:
    parent = """
    key: fan
    name: fan out
    object: order
    blocks:
      start: {type: start, next: each}
      each: {type: for_each, query: {type: user, where: "object.role == 'manager'"},
             process: note, wait: none}
    """
    child = """
    key: note
    name: note
    object: user
    draft: true
    blocks:
      start: {type: start, next: t}
      t: {type: question, title: Read this, assign: "=object", options: {ok: null}}
    """
    steps = """
  - start: {process: fan, object: o1}
  - expect:
      ended: {process: fan, object: o1, outcome: neutral}
      open_tasks: [{block: t, object: boris, assignee: boris}]
"""
    assert_ok(run_scenario({"fan": parent, "note": child}, scenario(steps)))


def test_refused_step_changes_nothing_and_answers_wait_for_retry(
    run_scenario: RunScenario,
) -> None:
    proc = """
    key: link
    name: link
    object: order
    task: {assign: object_manager}
    blocks:
      start: {type: start, next: q}
      q: {type: question, title: Q, options: {ok: bad}}
      bad: {type: operation, set: {manager: nobody}, next: q2}
      q2: {type: question, title: Q2, options: {ok: null}}
    """
    steps = """
  - start: {process: link, object: o1}
  - answer: {block: q, object: o1, option: ok, by: boris}
  - expect:
      incident: {process: link, object: o1, contains: "field 'manager': no user 'nobody'"}
      object: {id: o1, fields: {manager: boris}}
      open_tasks: []
  - answer: {block: q, object: o1, option: ok, by: boris}
  - expect: {refused: no open task}
"""
    assert_ok(run_scenario({"link": proc}, scenario(steps)))


def test_a_runaway_cascade_is_refused_as_a_whole(
    run_scenario: RunScenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Runner, "max_cascade", 500)
    proc = """
    key: storm
    name: storm
    object: order
    launch: {on: update, repeat: true}
    blocks:
      start: {type: start, next: bump}
      bump: {type: operation, set: {amount: "=object.amount + 1"}}
    """
    steps = """
  - update: {object: o1, set: {amount: 5}}
  - expect:
      refused: without coming to rest
      object: {id: o1, fields: {amount: 100}}
"""
    assert_ok(run_scenario({"storm": proc}, scenario(steps)))


def test_counters_start_at_zero_and_answer_follows_every_task(run_scenario: RunScenario) -> None:
    proc = """
    key: ask
    name: ask
    object: order
    counters: [n]
    blocks:
      start: {type: start, next: check}
      check: {type: condition, branches: [{if: "counters.n == 0", next: when}], else: null}
      when: {type: delay, ask: {title: When?, assign: "user:boris"}, next: follow}
      follow: {type: question, title: Again, assign: answer.by, options: {ok: null}}
    """
    steps = """
  - start: {process: ask, object: o1}
  - answer: {block: when, object: o1, fields: {at: "2026-03-01T00:00:00+03:00"}, by: olga}
  - expect: {open_tasks: [{block: follow, assignee: olga}]}
"""
    assert_ok(run_scenario({"ask": proc}, scenario(steps)))


def test_wait_for_rechecks_at_its_timeout(run_scenario: RunScenario) -> None:
    proc = """
    key: clock
    name: clock
    object: order
    blocks:
      start: {type: start, next: w}
      w: {type: wait_for, until: "now >= date(2026, 3, 3)", timeout: 1d, next: yes_,
          on_timeout: no_}
      yes_: {type: end, outcome: positive}
      no_: {type: end, outcome: negative}
    """
    steps = """
  - start: {process: clock, object: o1}
  - advance: 1d
  - expect: {ended: {process: clock, object: o1, outcome: positive}}
"""
    assert_ok(run_scenario({"clock": proc}, scenario(steps)))


def test_one_message_per_recipient_and_no_typo_recipients(run_scenario: RunScenario) -> None:
    proc = """
    key: tell
    name: tell
    object: order
    blocks:
      start: {type: start, next: m}
      m: {type: message, to: [manager, "user:boris", "role:manager"], subject: Hi, body: x,
          next: typo}
      typo: {type: message, to: managr, subject: Hi, body: x}
    """
    steps = """
  - start: {process: tell, object: o1}
  - expect:
      messages: [{to: boris@shop.example, subject_contains: Hi}]
      incident: {process: tell, object: o1, contains: "recipient 'managr'"}
"""
    assert_ok(run_scenario({"tell": proc}, scenario(steps)))


def test_explicit_null_assignee_means_unassigned(run_scenario: RunScenario) -> None:
    proc = """
    key: q
    name: q
    object: order
    blocks:
      start: {type: start, next: q}
      q: {type: question, title: Q, assign: object_manager, options: {ok: null}}
    """
    steps = """
  - start: {process: q, object: o1}
  - expect: {open_tasks: [{block: q, assignee: null}]}
"""
    result = run_scenario({"q": proc}, scenario(steps))
    assert not result.ok and "assignee: boris" in result.message


def test_cancelling_a_child_by_hand_ends_the_parents_branch(run_scenario: RunScenario) -> None:
    parent = """
    key: parent
    name: parent
    object: order
    task: {assign: object_manager}
    blocks:
      start: {type: start, next: sub}
      sub: {type: subprocess, process: child, exits: {ok: fine}}
      fine: {type: end, outcome: positive}
    """
    child = """
    key: child
    name: child
    object: order
    draft: true
    blocks:
      start: {type: start, next: ask}
      ask: {type: question, title: Call, options: {ok: done}}
      done: {type: end, outcome: positive, result: ok}
    """
    steps = """
  - start: {process: parent, object: o1}
  - cancel: {process: child, object: o1, by: olga}
  - expect:
      ended: {process: parent, object: o1, outcome: neutral}
      open_tasks: []
"""
    assert_ok(run_scenario({"parent": parent, "child": child}, scenario(steps)))
