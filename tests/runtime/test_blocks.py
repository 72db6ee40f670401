"""Every block type through the simulator, each scenario straight and round-tripped."""

from __future__ import annotations

from tests.support import RunScenario, assert_ok, scenario


def test_fork_join_waits_for_every_branch(run_scenario: RunScenario) -> None:
    proc = """
    key: fj
    name: fork and join
    object: order
    blocks:
      start: {type: start, next: split}
      split: {type: fork, next: [short, long]}
      short: {type: delay, for: 1h, next: meet}
      long: {type: delay, for: 2h, next: meet}
      meet: {type: join, next: done}
      done: {type: end, outcome: positive}
    """
    steps = """
  - start: {process: fj, object: o1}
  - advance: 1h
  - expect: {running: {process: fj, object: o1, waiting_at: meet}}
  - advance: 59m
  - expect: {running: {process: fj, object: o1, waiting_at: long}}
  - advance: 1m
  - expect: {ended: {process: fj, object: o1, outcome: positive}}
"""
    assert_ok(run_scenario({"fj": proc}, scenario(steps)))


def test_end_terminates_every_branch_and_cancels_tasks(run_scenario: RunScenario) -> None:
    proc = """
    key: race
    name: race
    object: order
    task: {assign: object_manager}
    blocks:
      start: {type: start, next: split}
      split: {type: fork, next: [ask, timeout]}
      ask: {type: question, title: "Take {{ object.number }}?", options: {yes: won}}
      won: {type: end, outcome: positive}
      timeout: {type: delay, for: 1m, next: lost}
      lost: {type: end, outcome: negative, result: too_late}
    """
    steps = """
  - start: {process: race, object: o1}
  - expect: {open_tasks: [{block: ask, object: o1, assignee: boris}]}
  - advance: 1m
  - expect:
      open_tasks: []
      ended: {process: race, object: o1, outcome: negative, result: too_late}
  - answer: {block: ask, object: o1, option: "yes", by: boris}
  - expect: {refused: no open task}
"""
    assert_ok(run_scenario({"race": proc}, scenario(steps)))


def test_condition_counter_and_loop_back_through_a_delay(run_scenario: RunScenario) -> None:
    proc = """
    key: count
    name: count
    object: order
    counters: [n]
    blocks:
      start: {type: start, next: zero}
      zero: {type: counter, counter: n, set: 0, next: more}
      more: {type: condition, branches: [{if: "counters.n < 3", next: bump}], else: done}
      bump: {type: counter, counter: n, add: 1, next: pause}
      pause: {type: delay, for: 10m, next: more}
      done: {type: end, outcome: neutral}
    """
    steps = """
  - start: {process: count, object: o1}
  - expect: {counters: {process: count, object: o1, values: {n: 1}}}
  - advance: 20m
  - expect: {counters: {process: count, object: o1, values: {n: 3}}}
  - advance: 9m
  - expect: {running: {process: count, object: o1, waiting_at: pause}}
  - advance: 1m
  - expect: {ended: {process: count, object: o1, outcome: neutral}}
"""
    assert_ok(run_scenario({"count": proc}, scenario(steps)))


def test_wait_for_wakes_on_a_linked_object_and_times_out(run_scenario: RunScenario) -> None:
    proc = """
    key: phone
    name: wait for a phone
    object: order
    blocks:
      start: {type: start, next: wait}
      wait: {type: wait_for, until: "object.client.phone", timeout: 5d, next: got,
             on_timeout: none}
      got: {type: end, outcome: positive, result: got}
      none: {type: end, outcome: negative, result: none}
    """
    woken = """
  - start: {process: phone, object: o1}
  - advance: 2d
  - expect: {running: {process: phone, object: o1, waiting_at: wait}}
  - update: {object: anna, set: {phone: "+491701234567"}}
  - expect: {ended: {process: phone, object: o1, result: got}}
"""
    assert_ok(run_scenario({"phone": proc}, scenario(woken)))
    timed_out = """
  - start: {process: phone, object: o1}
  - advance: 4d23h59m
  - expect: {running: {process: phone, object: o1}}
  - advance: 1m
  - expect: {ended: {process: phone, object: o1, outcome: negative, result: none}}
"""
    assert_ok(run_scenario({"phone": proc}, scenario(timed_out)))


def test_wait_for_holding_on_entry_passes_at_once(run_scenario: RunScenario) -> None:
    proc = """
    key: already
    name: already
    object: order
    blocks:
      start: {type: start, next: wait}
      wait: {type: wait_for, until: "object.status == 'new'", next: yes_}
      yes_: {type: end, outcome: positive}
    """
    steps = """
  - start: {process: already, object: o1}
  - expect: {ended: {process: already, object: o1, outcome: positive}}
"""
    assert_ok(run_scenario({"already": proc}, scenario(steps)))


def test_own_change_wakes_own_wait_for_as_a_new_step(run_scenario: RunScenario) -> None:
    proc = """
    key: self
    name: self wake
    object: order
    blocks:
      start: {type: start, next: split}
      split: {type: fork, next: [wait, later]}
      wait: {type: wait_for, until: "object.status == 'paid'", next: paid}
      later: {type: delay, for: 1h, next: pay}
      pay: {type: operation, set: {status: paid}}
      paid: {type: end, outcome: positive, result: paid}
    """
    steps = """
  - start: {process: self, object: o1}
  - advance: 1h
  - expect:
      ended: {process: self, object: o1, result: paid}
      object: {id: o1, fields: {status: paid}}
"""
    assert_ok(run_scenario({"self": proc}, scenario(steps)))


def test_delay_until_an_expression_and_until_a_date_a_manager_enters(
    run_scenario: RunScenario,
) -> None:
    proc = """
    key: webinar
    name: webinar
    object: order
    variables:
      webinar_at: {type: datetime}
    blocks:
      start: {type: start, next: before}
      before: {type: delay, until: "vars.webinar_at - days(1)", next: ask}
      ask: {type: delay, ask: {title: "When to call?", assign: object_manager}, next: done}
      done: {type: end, outcome: positive}
    """
    steps = """
  - start: {process: webinar, object: o1, vars: {webinar_at: "2026-03-05T19:00:00+03:00"}}
  - advance: {until: "2026-03-04T18:59:00+03:00"}
  - expect: {open_tasks: []}
  - advance: 1m
  - expect: {open_tasks: [{block: ask, assignee: boris}]}
  - answer: {block: ask, object: o1, fields: {at: "2026-03-04T18:00:00+03:00"}, by: boris}
  - expect: {ended: {process: webinar, object: o1}}
"""
    assert_ok(run_scenario({"webinar": proc}, scenario(steps)))
    later = """
  - start: {process: webinar, object: o1, vars: {webinar_at: "2026-03-02T12:00:00+03:00"}}
  - answer: {block: ask, object: o1, fields: {at: "2026-03-06T09:00:00"}, by: boris}
  - advance: {until: "2026-03-06T08:59:00+03:00"}
  - expect: {running: {process: webinar, object: o1, waiting_at: ask}}
  - advance: 1m
  - expect: {ended: {process: webinar, object: o1}}
"""
    assert_ok(run_scenario({"webinar": proc}, scenario(later)))


def test_loop_guard_stops_a_cycle_without_a_wait(run_scenario: RunScenario) -> None:
    proc = """
    key: spin
    name: spin
    object: order
    counters: [n]
    loop_limit: 50
    blocks:
      start: {type: start, next: bump}
      bump: {type: counter, counter: n, add: 1, next: again}
      again: {type: condition, branches: [{if: "counters.n >= 0", next: bump}], else: done}
      done: {type: end}
    """
    steps = """
  - start: {process: spin, object: o1}
  - expect: {incident: {process: spin, object: o1, contains: "loop without a wait: bump, again"}}
"""
    assert_ok(run_scenario({"spin": proc}, scenario(steps)))


def test_subprocess_routes_on_the_child_result(run_scenario: RunScenario) -> None:
    parent = """
    key: parent
    name: parent
    object: order
    task: {assign: object_manager, executors: [user:boris]}
    blocks:
      start: {type: start, next: sub}
      sub: {type: subprocess, process: child, exits: {yes_: ok, no_: bad}}
      ok: {type: end, outcome: positive, result: ok}
      bad: {type: end, outcome: negative, result: bad}
    """
    child = """
    key: child
    name: child
    object: order
    draft: true
    blocks:
      start: {type: start, next: ask}
      ask: {type: question, title: Agree?, options: {agree: yes_, refuse: no_}}
      yes_: {type: end, outcome: positive, result: yes_}
      no_: {type: end, outcome: negative, result: no_}
    """
    steps = """
  - start: {process: parent, object: o1}
  - expect: {open_tasks: [{block: ask, object: o1, assignee: boris}]}
  - answer: {block: ask, object: o1, option: refuse, by: boris}
  - expect:
      ended: {process: parent, object: o1, outcome: negative, result: bad}
      open_tasks: []
"""
    assert_ok(run_scenario({"parent": parent, "child": child}, scenario(steps)))


def test_ending_the_parent_cancels_children_and_their_tasks(run_scenario: RunScenario) -> None:
    parent = """
    key: parent
    name: parent
    object: order
    task: {assign: object_manager}
    blocks:
      start: {type: start, next: split}
      split: {type: fork, next: [sub, wait]}
      sub: {type: subprocess, process: child, exits: {done: fine}}
      fine: {type: end, outcome: positive}
      wait: {type: wait_for, until: "object.status == 'cancelled'", next: stop}
      stop: {type: end, outcome: negative, result: stopped}
    """
    child = """
    key: child
    name: child
    object: order
    draft: true
    blocks:
      start: {type: start, next: ask}
      ask: {type: question, title: Call, options: {ok: done}}
      done: {type: end, outcome: positive, result: done}
    """
    steps = """
  - start: {process: parent, object: o1}
  - expect: {open_tasks: [{block: ask, assignee: boris}]}
  - update: {object: o1, set: {status: cancelled}}
  - expect:
      open_tasks: []
      ended: {process: parent, object: o1, result: stopped}
  - expect: {ended: {process: child, object: o1, outcome: cancelled}}
"""
    assert_ok(run_scenario({"parent": parent, "child": child}, scenario(steps)))


def test_for_each_starts_a_child_per_object_and_waits_for_all(run_scenario: RunScenario) -> None:
    parent = """
    key: broadcast
    name: homework for every student
    object: order
    blocks:
      start: {type: start, next: each}
      each:
        type: for_each
        query: {type: user, where: "'with-homework' in object.groups"}
        process: homework
        vars: {topic: "Lesson 1"}
        next: done
      done: {type: end, outcome: positive}
    """
    child = """
    key: homework
    name: homework
    object: user
    draft: true
    variables:
      topic: {type: string}
    blocks:
      start: {type: start, next: hw}
      hw: {type: task, title: "Homework: {{ vars.topic }}", assign: "=object", wait: true,
           next: fin}
      fin: {type: end, outcome: positive}
    """
    objects = """
    groups: [with-homework, watch-only]
    """
    steps = """
  - update: {object: anna, set: {groups: [with-homework]}}
  - create: {type: user, id: carl, data: {name: Carl, email: carl@example.com,
                                           groups: [with-homework]}}
  - create: {type: user, id: dora, data: {name: Dora, email: dora@example.com,
                                           groups: [watch-only]}}
  - start: {process: broadcast, object: o1}
  - expect: {open_tasks: [{block: hw, object: anna, assignee: anna},
                          {block: hw, object: carl, assignee: carl}]}
  - status: {block: hw, object: anna, to: done, by: anna}
  - expect: {running: {process: broadcast, object: o1, waiting_at: each}}
  - status: {block: hw, object: carl, to: done, by: boris}
  - expect: {refused: may not move}
  - status: {block: hw, object: carl, to: done, by: carl}
  - expect: {ended: {process: broadcast, object: o1, outcome: positive}, open_tasks: []}
"""
    assert_ok(
        run_scenario({"broadcast": parent, "homework": child}, scenario(steps), objects=objects)
    )


def test_message_with_confirm_send_and_skip(run_scenario: RunScenario) -> None:
    proc = """
    key: notify
    name: notify
    object: order
    task: {assign: object_manager}
    blocks:
      start: {type: start, next: ask}
      ask: {type: message, to: client, template: ask-phone, confirm: true, next: again}
      again: {type: message, to: [client, manager], subject: "Order {{ object.number }}",
              body: "Hello {{ recipient.name }}", confirm: true}
    """
    template = """
    ---
    subject: "Your order {{ object.number }}: your phone number?"
    channel: email
    ---
    Dear {{ object.client.name }}, please send us your phone number.
    """
    steps = """
  - start: {process: notify, object: o1}
  - expect: {open_tasks: [{block: ask, assignee: boris}], message_count: 0}
  - answer: {block: ask, object: o1, option: maybe, by: boris}
  - expect: {refused: unknown option}
  - answer: {block: ask, object: o1, option: send, by: boris}
  - expect:
      messages: [{to: anna@example.com, subject_contains: "A-1: your phone"}]
      open_tasks: [{block: again}]
  - answer: {block: again, object: o1, option: skip, by: boris}
  - expect: {message_count: 0, ended: {process: notify, object: o1}}
"""
    assert_ok(run_scenario({"notify": proc}, scenario(steps), templates={"ask-phone": template}))


def test_messages_to_a_group_and_a_role(run_scenario: RunScenario) -> None:
    proc = """
    key: tell
    name: tell
    object: order
    blocks:
      start: {type: start, next: mail}
      mail: {type: message, to: ["group:staff", "role:owner"], subject: "Webinar moved",
             body: "New time"}
    """
    objects = """
    groups: [staff]
    """
    steps = """
  - update: {object: boris, set: {groups: [staff]}}
  - start: {process: tell, object: o1}
  - expect:
      messages: [{to: boris@shop.example, subject_contains: moved},
                 {to: olga@shop.example, subject_contains: moved}]
"""
    assert_ok(run_scenario({"tell": proc}, scenario(steps), objects=objects))


def test_operations_create_a_user_with_a_password_and_group(run_scenario: RunScenario) -> None:
    proc = """
    key: welcome
    name: welcome
    object: order
    blocks:
      start: {type: start, next: pw}
      pw: {type: operation, generate_password: {as: password}, next: make}
      make:
        type: operation
        create: {type: user, as: student, data: {name: "=object.client.name + ' Jr'",
                                                  email: "junior@example.com",
                                                  password: "=vars.password"}}
        next: mail
      mail: {type: message, to: "=vars.student", subject: "Welcome",
             body: "Login {{ vars.student }} password {{ vars.password }}", next: grp}
      grp: {type: operation, add_to_group: with-homework, set: {status: in_work}}
    """
    objects = """
    groups: [with-homework]
    """
    steps = """
  - start: {process: welcome, object: o1}
  - expect:
      messages: [{to: junior@example.com, subject_contains: Welcome}]
      object: {id: anna, fields: {groups: [with-homework]}}
  - expect: {object: {id: o1, fields: {status: in_work}}}
"""
    result = run_scenario({"welcome": proc}, scenario(steps), objects=objects)
    assert_ok(result)
    # the password reaches the message but never the trace or the instance state
    assert not any(
        "password" in str(line.get("details", {}).get("vars", "")) for line in result.trace
    )


def test_group_from_an_expression(run_scenario: RunScenario) -> None:
    proc = """
    key: grouping
    name: grouping
    object: order
    blocks:
      start: {type: start, next: grp}
      grp: {type: operation, add_to_group: "=object.number", next: drop}
      drop: {type: operation, remove_from_group: ["=object.number"], add_to_group: vip}
    """
    objects = """
    groups: [vip, A-1]
    """
    steps = """
  - start: {process: grouping, object: o1}
  - expect: {object: {id: anna, fields: {groups: [vip]}}}
  - update: {object: o1, set: {number: not-a-group}}
  - start: {process: grouping, object: o1}
  - expect: {incident: {process: grouping, object: o1, contains: "which is not a group"}}
"""
    result = run_scenario({"grouping": proc}, scenario(steps), objects=objects)
    assert_ok(result)


def test_detached_task_stays_open_after_the_end(run_scenario: RunScenario) -> None:
    proc = """
    key: detach
    name: detach
    object: order
    blocks:
      start: {type: start, next: todo}
      todo: {type: task, title: Pack the order, assign: object_manager, next: fin}
      fin: {type: end, outcome: positive}
    """
    steps = """
  - start: {process: detach, object: o1}
  - expect:
      ended: {process: detach, object: o1}
      open_tasks: [{block: todo, assignee: boris}]
  - status: {block: todo, object: o1, to: done, by: anna}
  - expect: {refused: may not move}
  - status: {block: todo, object: o1, to: done, by: boris}
  - expect: {open_tasks: []}
"""
    assert_ok(run_scenario({"detach": proc}, scenario(steps)))


def test_refusals_change_nothing(run_scenario: RunScenario) -> None:
    proc = """
    key: ask
    name: ask
    object: order
    task: {assign: object_manager, executors: [user:boris]}
    blocks:
      start: {type: start, next: q}
      q: {type: question, title: Take it?, options: {yes: done, no: done},
          fields: {note: {type: integer}}}
      done: {type: end}
    """
    steps = """
  - start: {process: ask, object: o1}
  - answer: {block: q, object: o1, by: boris}
  - expect: {refused: option is required}
  - answer: {block: q, object: o1, option: "yes", by: anna}
  - expect: {refused: may not answer}
  - answer: {block: q, object: o1, option: "yes", fields: {note: many}, by: boris}
  - expect: {refused: "field 'note'"}
  - answer: {block: q, object: o1, option: "yes", fields: {colour: red}, by: boris}
  - expect: {refused: colour}
  - answer: {block: nope, object: o1, option: "yes", by: boris}
  - expect: {refused: no open task, open_tasks: [{block: q}]}
  - answer: {block: q, object: o1, option: "yes", by: olga}
  - expect: {refused: false, ended: {process: ask, object: o1}}
"""
    assert_ok(run_scenario({"ask": proc}, scenario(steps)))


def test_failed_expectation_says_what_was_found(run_scenario: RunScenario) -> None:
    proc = """
    key: one
    name: one
    object: order
    blocks:
      start: {type: start, next: wait}
      wait: {type: delay, for: 1h, next: fin}
      fin: {type: end, outcome: positive}
    """
    steps = """
  - start: {process: one, object: o1}
  - expect: {ended: {process: one, object: o1}}
"""
    result = run_scenario({"one": proc}, scenario(steps))
    assert not result.ok and result.exit_code == 1
    assert "step 2: expect ended" in result.message
    assert "running" in result.message


def test_loop_guard_stops_a_fork_that_feeds_back_into_itself(run_scenario: RunScenario) -> None:
    proc = """
    key: breed
    name: breed
    object: order
    loop_limit: 20
    blocks:
      start: {type: start, next: split}
      split: {type: fork, next: [ask, split]}
      ask: {type: question, title: Q, options: {ok: null}}
    """
    steps = """
  - start: {process: breed, object: o1}
  - expect: {incident: {process: breed, object: o1, contains: "more than 200 blocks"}}
"""
    assert_ok(run_scenario({"breed": proc}, scenario(steps)))


def test_executors_assignment_goes_to_the_least_loaded(run_scenario: RunScenario) -> None:
    proc = """
    key: spread
    name: spread
    object: order
    task: {assign: executors, executors: [user:maria, group:sales]}
    blocks:
      start: {type: start, next: q}
      q: {type: question, title: Take it?, options: {ok: null}}
    """
    objects = """
    groups: [sales]
    """
    steps = """
  - create: {type: user, id: maria, data: {name: Maria, role: manager, groups: [sales]}}
  - update: {object: boris, set: {groups: [sales]}}
  - create: {type: order, id: o2, data: {number: A-2}}
  - create: {type: order, id: o3, data: {number: A-3}}
  - start: {process: spread, object: o1}
  - start: {process: spread, object: o2}
  - start: {process: spread, object: o3}
  - expect:
      open_tasks: [{object: o1, assignee: maria}, {object: o2, assignee: boris},
                   {object: o3, assignee: maria}]
"""
    assert_ok(run_scenario({"spread": proc}, scenario(steps), objects=objects))


def test_loop_guard_names_only_the_cycle(run_scenario: RunScenario) -> None:
    proc = """
    key: spin2
    name: spin after a prelude
    object: order
    counters: [n]
    loop_limit: 30
    blocks:
      start: {type: start, next: prelude}
      prelude: {type: counter, counter: n, set: 5, next: bump}
      bump: {type: counter, counter: n, add: 1, next: check}
      check: {type: condition, branches: [{if: "counters.n > 0", next: bump}], else: fin}
      fin: {type: end}
    """
    steps = """
  - start: {process: spin2, object: o1}
  - expect: {incident: {process: spin2, object: o1, contains: "loop without a wait: bump, check"}}
"""
    result = run_scenario({"spin2": proc}, scenario(steps))
    assert_ok(result)
    incident = next(line for line in result.trace if line["event"] == "incident")
    assert "prelude" not in incident["details"]["message"]


def test_a_counter_that_overflows_to_infinity_is_an_incident(run_scenario: RunScenario) -> None:
    """No store can keep an infinite number (it is not JSON): the block stops with a reason."""
    proc = """
    key: big
    name: overflow
    object: order
    counters: [n]
    blocks:
      start: {type: start, next: grow}
      grow: {type: counter, counter: n, set: "=1e308 * 10", next: done}
      done: {type: end, outcome: positive}
    """
    steps = """
  - start: {process: big, object: o1}
  - expect: {incident: {process: big, object: o1, contains: "not a finite number"}}
"""
    assert_ok(run_scenario({"big": proc}, scenario(steps)))


def test_text_with_a_nul_character_and_over_long_ids_are_refused(
    run_scenario: RunScenario,
) -> None:
    proc = """
    key: noop
    name: nothing
    object: order
    blocks:
      start: {type: start, next: done}
      done: {type: end, outcome: positive}
    """
    long_id = "x" * 101
    steps = f"""
  - create: {{type: user, id: bob, data: {{name: "Bo\\0b"}}}}
  - expect: {{refused: "NUL characters"}}
  - create: {{type: user, id: {long_id}, data: {{name: Long}}}}
  - expect: {{refused: "1 to 100 characters"}}
  - dictionary: {{key: cancel_reasons, add: "{"r" * 201}"}}
  - expect: {{refused: "at most 200 characters"}}
"""
    objects = """
    dictionaries:
      cancel_reasons: [changed mind]
    """
    assert_ok(run_scenario({"noop": proc}, scenario(steps), objects=objects))
