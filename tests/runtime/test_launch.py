"""Launch rules and administration steps through the simulator."""

from __future__ import annotations

from tests.support import RunScenario, assert_ok, scenario

ASK = """
key: take
name: take the order
object: order
task: {assign: object_manager, executors: [user:boris]}
launch: {on: create, entry: "object.status == 'new'"}
blocks:
  start: {type: start, next: q}
  q: {type: question, title: "Take {{ object.number }}?", options: {yes: done}}
  done: {type: end, outcome: positive}
"""


def test_create_launch_with_entry_condition(run_scenario: RunScenario) -> None:
    steps = """
  - create: {type: order, id: o2, data: {number: A-2, status: new, client: anna, manager: boris}}
  - create: {type: order, id: o3, data: {number: A-3, status: paid, client: anna,
                                          manager: boris}}
  - expect: {open_tasks: [{block: q, object: o2, assignee: boris}]}
  - create: {type: order, id: o4, data: {number: A-4, status: nonsense, amount: lots}}
  - expect: {refused: "field 'amount'", open_tasks: [{block: q, object: o2}]}
"""
    assert_ok(run_scenario({"take": ASK}, scenario(steps)))


def test_update_launch_enters_once_unless_repeat(run_scenario: RunScenario) -> None:
    proc = """
    key: watch
    name: watch
    object: order
    launch: {on: update, entry: "object.status == 'in_work'"}
    blocks:
      start: {type: start, next: note}
      note: {type: message, to: manager, subject: "{{ object.number }} is in work", body: x}
    """
    steps = """
  - update: {object: o1, set: {status: in_work}}
  - expect: {messages: [{to: boris@shop.example, subject_contains: A-1 is in work}]}
  - update: {object: o1, set: {status: new}}
  - update: {object: o1, set: {status: in_work}}
  - expect: {message_count: 0}
"""
    assert_ok(run_scenario({"watch": proc}, scenario(steps)))
    repeating = proc.replace("entry:", "repeat: true, entry:")
    steps2 = """
  - update: {object: o1, set: {status: in_work}}
  - update: {object: o1, set: {status: new}}
  - update: {object: o1, set: {status: in_work}}
  - expect: {message_count: 2}
"""
    assert_ok(run_scenario({"watch": repeating}, scenario(steps2)))


def test_periodic_launch_takes_objects_that_newly_match(run_scenario: RunScenario) -> None:
    proc = """
    key: sweep
    name: sweep
    object: order
    launch: {on: periodic, every: 10m, entry: "object.status == 'delayed'"}
    blocks:
      start: {type: start, next: note}
      note: {type: message, to: manager, subject: "{{ object.number }} delayed", body: x}
    """
    steps = """
  - update: {object: o1, set: {status: delayed}}
  - expect: {message_count: 0}
  - advance: 9m
  - expect: {message_count: 0}
  - advance: 1m
  - expect: {messages: [{to: boris@shop.example, subject_contains: A-1 delayed}]}
  - advance: 1h
  - expect: {message_count: 0}
"""
    assert_ok(run_scenario({"sweep": proc}, scenario(steps)))


STAGES = """
types:
  event:
    label: Event
    stages: [new, preparation, registration]
    success: held
    failure: cancelled
    fields:
      kind: {type: link, to: dictionary:event_type}
      address: {type: string}
      responsible: {type: link, to: user}
dictionaries:
  event_type: [offline, online]
"""


def test_stage_launch_guard_sends_the_object_back(run_scenario: RunScenario) -> None:
    prep = """
    key: prep
    name: preparation task
    object: event
    launch: {on: create}
    blocks:
      start: {type: start, next: kind}
      kind:
        type: condition
        branches:
          - {if: "object.kind == 'offline'", next: offline}
        else: other
      offline: {type: task, title: Book a room, assign: "=object.responsible"}
      other: {type: task, title: "Prepare (type {{ object.kind }})", assign: "=object.responsible"}
    """
    guard = """
    key: guard
    name: readiness guard
    object: event
    launch: {on: stage, stage: registration, repeat: true}
    blocks:
      start: {type: start, next: ready}
      ready:
        type: condition
        branches: [{if: "object.kind != 'offline' or object.address", next: null}]
        else: back
      back: {type: operation, stage: preparation, reason: "an offline event needs an address"}
    """
    steps = """
  - create: {type: event, id: e1, data: {kind: offline, responsible: boris}}
  - expect: {open_tasks: [{block: offline, object: e1, assignee: boris}]}
  - stage: {object: e1, to: registration, by: boris}
  - expect:
      refused: an offline event needs an address
      object: {id: e1, fields: {stage: preparation}}
      tasks_created: {block: offline, count: 1}
  - update: {object: e1, set: {address: Main st 1}}
  - stage: {object: e1, to: registration, by: boris}
  - expect: {refused: false, object: {id: e1, fields: {stage: registration}}}
  - stage: {object: e1, to: nowhere, by: boris}
  - expect: {refused: "event e1: unknown stage 'nowhere'"}
  - stage: {object: e1, to: held, by: boris}
  - stage: {object: e1, to: registration, by: boris}
  - expect: {refused: "stage 'held' is final", object: {id: e1, fields: {stage: held}}}
  - create: {type: event, id: e2, data: {kind: hybrid, responsible: boris}}
  - expect: {refused: hybrid}
  - dictionary: {key: event_type, add: hybrid}
  - create: {type: event, id: e2, data: {kind: hybrid, responsible: boris}}
  - expect: {open_tasks: [{block: offline, object: e1}, {block: other, object: e2}]}
"""
    assert_ok(run_scenario({"prep": prep, "guard": guard}, scenario(steps), objects=STAGES))


def test_approval_restart_reassign_and_cancel(run_scenario: RunScenario) -> None:
    proc = ASK.replace("launch: {on: create,", "launch: {on: create, approval: true,")
    steps = """
  - create: {type: user, id: maria, data: {name: Maria, email: maria@shop.example,
                                            role: manager}}
  - create: {type: order, id: o2, data: {number: A-2, status: new, manager: boris}}
  - expect: {open_tasks: []}
  - start: {process: take, object: o2, by: boris}
  - expect: {refused: approved}
  - approve: {process: take, by: boris}
  - expect: {refused: may not approve}
  - approve: {process: take, by: olga}
  - create: {type: order, id: o3, data: {number: A-3, status: new, manager: boris}}
  - expect: {open_tasks: [{block: q, object: o3, assignee: boris}]}
  - reassign: {process: take, from: boris, to: maria, by: olga}
  - expect: {open_tasks: [{block: q, object: o3, assignee: maria}]}
  - reassign: {process: take, from: maria, to: null, by: olga}
  - expect: {open_tasks: [{block: q, object: o3, assignee: null}]}
  - claim: {block: q, object: o3, by: boris}
  - expect: {open_tasks: [{block: q, object: o3, assignee: boris}]}
  - restart: {process: take, by: olga}
  - expect: {open_tasks: [], tasks_created: {block: q, count: 1}}
  - start: {process: take, object: o3, by: olga}
  - expect: {refused: stopped, open_tasks: []}
  - activate: {process: take, by: olga}
  - start: {process: take, object: o3, by: olga}
  - expect: {open_tasks: [{block: q, object: o3}]}
  - cancel: {process: take, object: o3, by: olga}
  - expect: {open_tasks: [], ended: {process: take, object: o3, outcome: cancelled}}
"""
    assert_ok(run_scenario({"take": proc}, scenario(steps)))


def test_mass_start_and_event_launch(run_scenario: RunScenario) -> None:
    mass = """
    key: remind
    name: remind
    object: order
    blocks:
      start: {type: start, next: mail}
      mail: {type: message, to: client, subject: "Pay {{ object.number }}", body: x}
    """
    hook = """
    key: signup
    name: signup
    object: user
    launch: {on: event, event: "webhook:purchase"}
    variables:
      ticket: {type: string}
    blocks:
      start: {type: start, next: mail}
      mail: {type: message, to: client, subject: "Ticket {{ vars.ticket }}", body: x}
    """
    steps = """
  - create: {type: order, id: o2, data: {number: A-2, status: new, client: anna}}
  - create: {type: order, id: o3, data: {number: A-3, status: paid, client: anna}}
  - mass_start: {process: remind, where: "object.status == 'new'", by: olga}
  - expect: {messages: [{to: anna@example.com, subject_contains: A-1},
                        {to: anna@example.com, subject_contains: A-2}]}
  - event: {kind: webhook, key: purchase, data: {name: Zoe, email: zoe@example.com,
                                                 ticket: with-homework}}
  - expect: {messages: [{to: zoe@example.com, subject_contains: with-homework}]}
"""
    assert_ok(run_scenario({"remind": mass, "signup": hook}, scenario(steps)))
