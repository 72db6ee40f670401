"""Semantic validation of process files (FORMATS.md "Validation"): one case per problem."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from flowlane.model.process import QuestionBlock
from flowlane.model.recipe import load_process_file, load_recipe
from flowlane.model.validate import recipe_root, validate_files, validate_process, validate_recipe

HEAD = """\
key: p
name: P
object: order
counters: [calls]
variables:
  due: {type: datetime}
"""

OBJECTS = """\
types:
  order:
    fields:
      cancel_reason: {type: enum, dictionary: cancel_reasons}
  event:
    stages: [new, preparation, registration]
    success: held
    failure: cancelled
    fields:
      kind: {type: link, to: "dictionary:event_type"}
      host: {type: link, to: user}
dictionaries:
  event_type: [offline, online]
  cancel_reasons: [too_expensive, other]
groups: [watch-only, with-homework]
"""


def process(*blocks: str, head: str = HEAD) -> str:
    """A process file: ``head`` and the given block lines (``id: {...}``)."""
    return head + "blocks:\n" + "".join(f"  {b}\n" for b in blocks)


def flow(block: str, *extra: str, head: str = HEAD) -> str:
    """``start -> b -> done`` with ``b`` given; ``b`` should exit to ``done``."""
    return process(
        "start: {type: start, next: b}", f"b: {block}", *extra, "done: {type: end}", head=head
    )


def lines(tmp_path: Path, *paths: Path) -> list[str]:
    return [str(d).replace(f"{tmp_path}/", "") for d in validate_files(list(paths))]


def check(tmp_path: Path, text: str, name: str = "p.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    return lines(tmp_path, path)


def write_recipe(
    root: Path, processes: dict[str, str], files: dict[str, str] | None = None
) -> Path:
    (root / "processes").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "forms").mkdir()
    (root / "recipe.yaml").write_text("key: r\nname: R\n")
    (root / "objects.yaml").write_text(OBJECTS)
    for name, text in processes.items():
        (root / "processes" / f"{name}.yaml").write_text(text)
    for name, text in (files or {}).items():
        (root / name).write_text(text)
    return root


# ---- a valid process ---------------------------------------------------------------------

FORMATS_EXAMPLE = """\
key: reach-by-phone
name: Reach the client by phone within 3 days
object: order
task:
  title: "Order {{ object.number }}"
  assign: object_manager
  executors: [group:sales]
  supervisors: [role:admin]
  priority: normal
  reaction: 2h
launch:
  on: periodic
  every: 10m
  entry: "object.status == 'new'"
variables:
  pay_date: {type: datetime, label: Expected payment date}
counters: [days, calls]
blocks:
  start:       {type: start, next: reset_days}
  reset_days:  {type: counter, counter: days, set: 0, next: reset_calls}
  reset_calls: {type: counter, counter: calls, set: 0, next: call}
  call:
    type: call
    title: "Call {{ object.client.name }}"
    script: "Ask whether order {{ object.number }} will be paid."
    options: {reached: reached, duplicate: duplicate, wrong_number: wrong, not_reached: missed}
  missed:      {type: counter, counter: calls, add: 1, next: calls_left}
  calls_left:  {type: condition, branches: [{if: "counters.calls < 3", next: pause}],
                else: day_done}
  pause:       {type: delay, for: 30m, next: call}
  day_done:    {type: counter, counter: days, add: 1, next: days_left}
  days_left:   {type: condition, branches: [{if: "counters.days < 3", next: next_day}],
                else: failed}
  next_day:    {type: delay, for: 24h, next: reset_calls}
  reached:     {type: end, outcome: positive, result: reached}
  duplicate:   {type: end, outcome: negative, result: duplicate}
  wrong:       {type: end, outcome: neutral, result: wrong_number}
  failed:      {type: end, outcome: negative, result: failed}
"""


def test_the_formats_example_is_valid(tmp_path: Path) -> None:
    assert check(tmp_path, FORMATS_EXAMPLE) == []


def test_every_block_type_valid_together(tmp_path: Path) -> None:
    text = process(
        "start: {type: start, next: f}",
        "f: {type: fork, next: [w, d]}",
        "w: {type: wait_for, until: 'object.paid_amount >= object.amount', timeout: P3D,"
        " next: j, on_timeout: j}",
        "d: {type: delay, until: 'vars.due - days(1)', next: j}",
        "j: {type: join, next: q}",
        "q: {type: question, title: 'Paid?', assign: executors,"
        " fields: {note: {type: text}}, options: {'yes': t, 'no': op}}",
        "t: {type: task, title: 'Check {{ object.number }}', assign: '=object.client',"
        " wait: true, workflow: {statuses: [new, done], initial: new, final: [done],"
        " transitions: [{from: new, to: done}]}, next: m}",
        "op: {type: operation, set: {amount: 0, manager: '=answer.by'}, next: m}",
        "m: {type: message, channel: inapp, to: [client, manager],"
        " subject: 'Hi {{ object.number }}',"
        " body: 'Thanks', next: c}",
        "c: {type: counter, counter: calls, add: '=counters.calls + 1', next: done}",
        "done: {type: end, outcome: positive}",
    )
    assert check(tmp_path, text) == []


# ---- errors located at a block -----------------------------------------------------------

BLOCK_ERRORS = [
    # exits and reachability
    (
        "exit-names-no-block",
        flow("{type: counter, counter: calls, add: 1, next: nowhere}"),
        "p.yaml:b: exit 'next' names no block 'nowhere'",
    ),
    (
        "option-names-no-block",
        flow("{type: question, options: {ok: done, later: nope}}"),
        "p.yaml:b: exit 'options.later' names no block 'nope'",
    ),
    (
        "unreachable",
        flow("{type: join, next: done}", "lost: {type: end}"),
        "p.yaml:lost: no path from 'start' reaches this block",
    ),
    # missing or conflicting parameters
    ("fork-without-next", flow("{type: fork}"), "p.yaml:b: fork needs 'next': a list of blocks"),
    (
        "condition-without-branches",
        flow("{type: condition, else: done}"),
        "p.yaml:b: condition needs at least one branch in 'branches'",
    ),
    (
        "delay-without-time",
        flow("{type: delay, next: done}"),
        "p.yaml:b: delay needs one of 'for', 'until' or 'ask'",
    ),
    (
        "delay-with-two-times",
        flow("{type: delay, for: 1h, until: 'vars.due', next: done}"),
        "p.yaml:b: delay takes only one of 'for', 'until' or 'ask', not 'for' and 'until'",
    ),
    (
        "on-timeout-without-timeout",
        flow("{type: wait_for, until: 'True', next: done, on_timeout: done}"),
        "p.yaml:b: 'on_timeout' needs 'timeout'",
    ),
    (
        "question-without-options",
        flow("{type: question, title: Why}"),
        "p.yaml:b: question needs 'options'",
    ),
    ("call-without-options", flow("{type: call, title: Ring}"), "p.yaml:b: call needs 'options'"),
    (
        "operation-doing-nothing",
        flow("{type: operation, next: done}"),
        "p.yaml:b: operation does nothing: give one of 'set', 'stage', 'add_to_group', "
        "'remove_from_group', 'create', 'generate_password'",
    ),
    (
        "counter-without-value",
        flow("{type: counter, counter: calls, next: done}"),
        "p.yaml:b: counter needs one of 'set' or 'add'",
    ),
    (
        "counter-with-two-values",
        flow("{type: counter, counter: calls, set: 0, add: 1, next: done}"),
        "p.yaml:b: counter takes only one of 'set' or 'add'",
    ),
    (
        "counter-text-value",
        flow("{type: counter, counter: calls, add: many, next: done}"),
        "p.yaml:b: add: 'many' is neither a number nor an =expression",
    ),
    (
        "message-without-content",
        flow("{type: message, to: client, next: done}"),
        "p.yaml:b: message needs 'template' or 'subject' and 'body'",
    ),
    (
        "unknown-assignment",
        flow("{type: question, assign: boss, options: {ok: done}}"),
        "p.yaml:b: assign: unknown assignment 'boss' (use object_manager, personal_manager, "
        "executors, answer.by, user:<id>, none or an =expression)",
    ),
    # durations
    (
        "bad-delay-duration",
        flow("{type: delay, for: soon, next: done}"),
        "p.yaml:b: for: not a duration: 'soon' (use e.g. 30m, 24h, 1h30m, PT30M, P3D)",
    ),
    (
        "bad-timeout",
        flow("{type: wait_for, until: 'True', timeout: 3 days, next: done, on_timeout: done}"),
        "p.yaml:b: timeout: not a duration: '3 days' (use e.g. 30m, 24h, 1h30m, PT30M, P3D)",
    ),
    # expressions that do not parse or leave the safe subset
    (
        "condition-syntax",
        flow("{type: condition, branches: [{if: 'counters.calls <', next: done}], else: done}"),
        "p.yaml:b: branches[0].if: invalid expression 'counters.calls <': "
        "syntax error at the end of the expression: invalid syntax",
    ),
    (
        "wait-for-private-name",
        flow("{type: wait_for, until: '__import__(\"os\")', next: done}"),
        "p.yaml:b: until: invalid expression '__import__(\"os\")': name '__import__' is private",
    ),
    (
        "delay-until-unknown-name",
        flow("{type: delay, until: 'tomorrow', next: done}"),
        "p.yaml:b: until: invalid expression 'tomorrow': name 'tomorrow' is not allowed here; "
        "use one of: answer, counters, now, object, vars",
    ),
    (
        "set-value-lambda",
        flow("{type: operation, set: {amount: '=lambda: 1'}, next: done}"),
        "p.yaml:b: set.amount: invalid expression 'lambda: 1': lambda is not allowed",
    ),
    (
        "counter-expression",
        flow("{type: counter, counter: calls, set: '=counters.calls +', next: done}"),
        "p.yaml:b: set: invalid expression 'counters.calls +': "
        "syntax error at the end of the expression: invalid syntax",
    ),
    (
        "message-to-expression",
        flow("{type: message, to: ['=object.', manager], body: Hi, next: done}"),
        "p.yaml:b: to[0]: invalid expression 'object.': "
        "syntax error at the end of the expression: invalid syntax",
    ),
    (
        "assign-expression",
        flow("{type: task, assign: '=object.client.', next: done}"),
        "p.yaml:b: assign: invalid expression 'object.client.': "
        "syntax error at the end of the expression: invalid syntax",
    ),
    (
        "create-data-expression",
        flow("{type: operation, create: {type: order, data: {amount: '=1 +'}}, next: done}"),
        "p.yaml:b: create.data.amount: invalid expression '1 +': "
        "syntax error at the end of the expression: invalid syntax",
    ),
    (
        "subprocess-vars-expression",
        flow("{type: subprocess, process: child, vars: {x: '=[i for i in y]'}, next: done}"),
        "p.yaml:b: vars.x: invalid expression '[i for i in y]': comprehensions are not allowed",
    ),
    # names not in scope
    (
        "unknown-counter-block",
        flow("{type: counter, counter: days, set: 0, next: done}"),
        "p.yaml:b: unknown counter 'days' (declare it in 'counters:')",
    ),
    (
        "unknown-counter-expression",
        flow("{type: condition, branches: [{if: 'counters.days > 1', next: done}], else: done}"),
        "p.yaml:b: branches[0].if: unknown counter 'days' (declare it in 'counters:')",
    ),
    (
        "unknown-field",
        flow("{type: wait_for, until: 'object.colour == 1', next: done}"),
        "p.yaml:b: until: type 'order' has no field 'colour' (object.colour)",
    ),
    (
        "unknown-field-through-link",
        flow("{type: wait_for, until: 'object.client.fone', next: done}"),
        "p.yaml:b: until: type 'user' has no field 'fone' (object.client.fone)",
    ),
    (
        "stage-of-unstaged-type",
        flow("{type: wait_for, until: \"object.stage == 'x'\", next: done}"),
        "p.yaml:b: until: type 'order' has no field 'stage' (object.stage)",
    ),
    (
        "set-unknown-field",
        flow("{type: operation, set: {colour: red}, next: done}"),
        "p.yaml:b: set: type 'order' has no field 'colour'",
    ),
    (
        "set-bad-literal",
        flow("{type: operation, set: {amount: lots}, next: done}"),
        "p.yaml:b: set.amount: 'lots' is not a number",
    ),
    (
        "set-reserved-field",
        flow("{type: operation, set: {id: o2}, next: done}"),
        "p.yaml:b: set: field 'id' cannot be set",
    ),
    (
        "create-unknown-field",
        flow("{type: operation, create: {type: user, data: {nick: x}}, next: done}"),
        "p.yaml:b: create.data: type 'user' has no field 'nick'",
    ),
    (
        "stage-on-unstaged-type",
        flow("{type: operation, stage: paid, next: done}"),
        "p.yaml:b: stage: type 'order' has no stages",
    ),
    # templates that do not parse
    (
        "title-template",
        flow("{type: question, title: 'Hi {{ object.number }', options: {ok: done}}"),
        "p.yaml:b: title: template does not parse: unexpected '}'",
    ),
    (
        "script-template",
        flow("{type: call, script: '{% if %}', options: {ok: done}}"),
        "p.yaml:b: script: template does not parse: "
        "Expected an expression, got 'end of statement block'",
    ),
    (
        "body-template",
        flow('{type: message, subject: ok, body: "line\\n{{ x ", next: done}'),
        "p.yaml:b: body: template does not parse: "
        "unexpected end of template, expected 'end of print statement'. (line 2)",
    ),
    (
        "ask-title-template",
        flow("{type: delay, ask: {title: '{{'}, next: done}"),
        "p.yaml:b: ask.title: template does not parse: unexpected 'end of template'",
    ),
    # task workflows
    (
        "workflow-initial",
        flow("{type: task, workflow: {statuses: [a, b], initial: x, final: [b]}, next: done}"),
        "p.yaml:b: workflow.initial: status 'x' is not among statuses (a, b)",
    ),
    (
        "workflow-final",
        flow("{type: task, workflow: {statuses: [a, b], initial: a, final: [c]}, next: done}"),
        "p.yaml:b: workflow.final: status 'c' is not among statuses (a, b)",
    ),
    (
        "workflow-transition",
        flow(
            "{type: task, workflow: {statuses: [a, b], final: [b],"
            " transitions: [{from: [a, z], to: b}]}, next: done}"
        ),
        "p.yaml:b: workflow.transitions[0].from: status 'z' is not among statuses (a, b)",
    ),
    (
        "workflow-without-final",
        flow("{type: task, workflow: {statuses: [a, b]}, next: done}"),
        "p.yaml:b: workflow needs at least one 'final' status",
    ),
    # fields and types
    (
        "question-field-spec",
        flow("{type: question, fields: {n: {type: colour}}, options: {ok: done}}"),
        "p.yaml:b: fields: field 'n': type: 'colour' is not a field type "
        "(string, text, integer, number, boolean, date, datetime, email, phone, enum, link, list, "
        "file, password)",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in BLOCK_ERRORS], ids=[c[0] for c in BLOCK_ERRORS]
)
def test_block_error(tmp_path: Path, text: str, expected: str) -> None:
    found = check(tmp_path, text)
    assert expected in found
    assert not expected.split(": ", 1)[1].startswith("warning")


# ---- errors located at the file ------------------------------------------------------------

FILE_ERRORS = [
    ("no-start", process("a: {type: end}"), "p.yaml: no start block (a block with 'type: start')"),
    (
        "two-starts",
        process("s1: {type: start, next: e}", "s2: {type: start, next: e}", "e: {type: end}"),
        "p.yaml: more than one start block: s1, s2",
    ),
    (
        "launch-stage-without-on-stage",
        flow("{type: join, next: done}", head=HEAD + "launch: {stage: new}\n"),
        "p.yaml: 'launch.stage' goes only with 'on: stage'",
    ),
    (
        "launch-event-without-on-event",
        flow("{type: join, next: done}", head=HEAD + "launch: {on: create, event: email}\n"),
        "p.yaml: 'launch.event' goes only with 'on: event'",
    ),
    (
        "every-without-periodic",
        flow("{type: join, next: done}", head=HEAD + "launch: {on: create, every: 1h}\n"),
        "p.yaml: 'launch.every' goes only with 'on: periodic'",
    ),
    (
        "periodic-without-every",
        flow("{type: join, next: done}", head=HEAD + "launch: {on: periodic}\n"),
        "p.yaml: 'on: periodic' needs 'launch.every'",
    ),
    (
        "stage-launch-without-stage",
        flow("{type: join, next: done}", head=HEAD + "launch: {on: stage}\n"),
        "p.yaml: 'on: stage' needs 'launch.stage'",
    ),
    (
        "bad-every",
        flow("{type: join, next: done}", head=HEAD + "launch: {on: periodic, every: 2mo}\n"),
        "p.yaml: launch.every: not a duration: '2mo' (use e.g. 30m, 24h, 1h30m, PT30M, P3D)",
    ),
    (
        "bad-event",
        flow("{type: join, next: done}", head=HEAD + "launch: {on: event, event: sms}\n"),
        "p.yaml: launch.event: 'sms' is not form:<key>, webhook:<key>, email or keyword:<word>",
    ),
    (
        "draft-with-launch",
        flow("{type: join, next: done}", head=HEAD + "draft: true\nlaunch: {on: create}\n"),
        "p.yaml: a draft process has no 'launch': other processes start it",
    ),
    (
        "entry-expression",
        flow(
            "{type: join, next: done}",
            head=HEAD + "launch: {on: create, entry: 'object.amount >'}\n",
        ),
        "p.yaml: launch.entry: invalid expression 'object.amount >': "
        "syntax error at the end of the expression: invalid syntax",
    ),
    (
        "where-unknown-field",
        flow(
            "{type: join, next: done}", head=HEAD + "launch: {on: update, where: 'object.paid'}\n"
        ),
        "p.yaml: launch.where: type 'order' has no field 'paid' (object.paid)",
    ),
    (
        "task-title-template",
        flow("{type: join, next: done}", head=HEAD + "task: {title: '{{ }}'}\n"),
        "p.yaml: task.title: template does not parse: "
        "Expected an expression, got 'end of print statement'",
    ),
    (
        "task-reaction",
        flow("{type: join, next: done}", head=HEAD + "task: {reaction: fast}\n"),
        "p.yaml: task.reaction: not a duration: 'fast' (use e.g. 30m, 24h, 1h30m, PT30M, P3D)",
    ),
    (
        "variable-spec",
        flow("{type: join, next: done}", head=HEAD.replace("{type: datetime}", "{type: enum}")),
        "p.yaml: variables: field 'due': an enum needs 'values' or 'dictionary'",
    ),
    (
        "counter-twice",
        flow("{type: join, next: done}", head=HEAD.replace("[calls]", "[calls, calls]")),
        "p.yaml: counters: counter 'calls' is declared twice",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in FILE_ERRORS], ids=[c[0] for c in FILE_ERRORS]
)
def test_file_level_problem(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in check(tmp_path, text)


def test_unknown_variable_is_a_warning_outside_a_recipe_and_an_error_inside(tmp_path: Path) -> None:
    text = flow("{type: wait_for, until: 'vars.due_at', next: done}")
    assert check(tmp_path, text) == [
        "p.yaml:b: warning: until: variable 'due_at' is not in 'variables:' "
        "(what parent processes pass is not known outside a recipe)"
    ]
    root = write_recipe(tmp_path / "r", {"p": text})
    assert lines(tmp_path, root / "processes" / "p.yaml") == [
        "r/processes/p.yaml:b: until: unknown variable 'due_at' (declare it in 'variables:')"
    ]


# ---- parse errors (pydantic and YAML), kept as they are ------------------------------------


def test_invalid_yaml(tmp_path: Path) -> None:
    found = check(tmp_path, "key: p\nname: [\n")
    assert found == ["p.yaml:3: invalid YAML: expected the node content, but found '<stream end>'"]


def test_unknown_key_and_block_type_and_outcome(tmp_path: Path) -> None:
    text = process(
        "start: {type: start, next: e}",
        "e: {type: end, colour: red}",
        "x: {type: bogus}",
        "y: {type: end, outcome: great}",
    )
    assert check(tmp_path, text) == [
        "p.yaml:e: unknown key 'colour'",
        "p.yaml:x: unknown block type 'bogus'",
        "p.yaml:y: outcome: Input should be 'positive', 'neutral' or 'negative'",
    ]


def test_top_level_unknown_key(tmp_path: Path) -> None:
    text = flow("{type: join, next: done}", head=HEAD + "colour: red\n")
    assert check(tmp_path, text) == ["p.yaml: unknown key 'colour'"]


# ---- warnings ------------------------------------------------------------------------------


def test_empty_exits_are_warnings(tmp_path: Path) -> None:
    text = process(
        "start: {type: start, next: q}",
        "q: {type: question, options: {'yes': c, 'no': null}}",
        "c: {type: condition, branches: [{if: 'counters.calls > 0', next: f}]}",
        "f: {type: fork, next: [w, null]}",
        "w: {type: wait_for, until: 'True', timeout: 1h, next: e}",
        "e: {type: end}",
    )
    assert check(tmp_path, text) == [
        "p.yaml:q: warning: empty exit 'options.no': that branch ends here",
        "p.yaml:c: warning: empty exit 'else': that branch ends here",
        "p.yaml:f: warning: empty exit 'next[1]': that branch ends here",
        "p.yaml:w: warning: empty exit 'on_timeout': that branch ends here",
    ]


def test_missing_next_is_an_empty_exit(tmp_path: Path) -> None:
    text = process("start: {type: start, next: a}", "a: {type: operation, set: {amount: 1}}")
    assert check(tmp_path, text) == ["p.yaml:a: warning: empty exit 'next': that branch ends here"]


def test_cycle_without_a_waiting_block(tmp_path: Path) -> None:
    text = process(
        "start: {type: start, next: a}",
        "a: {type: counter, counter: calls, add: 1, next: b}",
        "b: {type: condition, branches: [{if: 'counters.calls < 5', next: a}], else: done}",
        "done: {type: end}",
        head=HEAD + "loop_limit: 50\n",
    )
    assert check(tmp_path, text) == [
        "p.yaml:a: warning: cycle without a waiting block: a -> b -> a; "
        "the loop guard stops it after 50 blocks"
    ]


def test_cycle_through_a_waiting_block_is_fine_but_a_shortcut_is_not(tmp_path: Path) -> None:
    text = process(
        "start: {type: start, next: a}",
        "a: {type: condition, branches: [{if: 'counters.calls < 5', next: p}], else: b}",
        "p: {type: delay, for: 1h, next: a}",
        "b: {type: condition, branches: [{if: 'counters.calls < 9', next: b}], else: done}",
        "done: {type: end}",
    )
    assert check(tmp_path, text) == [
        "p.yaml:b: warning: cycle without a waiting block: b -> b; "
        "the loop guard stops it after 1000 blocks"
    ]


def test_a_cycle_is_reported_once(tmp_path: Path) -> None:
    text = process(
        "start: {type: start, next: a}",
        "a: {type: fork, next: [b, c]}",
        "b: {type: operation, set: {amount: 1}, next: a}",
        "c: {type: operation, set: {amount: 2}, next: a}",
    )
    found = [f for f in check(tmp_path, text) if "cycle" in f]
    assert found == [
        "p.yaml:a: warning: cycle without a waiting block: a -> b -> a; "
        "the loop guard stops it after 1000 blocks"
    ]


# ---- outside a recipe: built-in types only, warnings for the rest ----------------------------


def test_outside_a_recipe_unresolved_names_are_warnings(tmp_path: Path) -> None:
    text = process(
        "start: {type: start, next: m}",
        "m: {type: message, template: hello, next: g}",
        "g: {type: operation, add_to_group: vip, create: {type: ticket}, next: s}",
        "s: {type: subprocess, process: child, exits: {ok: done}}",
        "done: {type: end}",
        head=HEAD.replace("object: order", "object: event"),
    )
    assert check(tmp_path, text) == [
        "p.yaml: warning: object type 'event' is not built in: not checked outside a recipe",
        "p.yaml:m: warning: template: template 'hello' is not checked outside a recipe",
        "p.yaml:g: warning: add_to_group: group 'vip' is not checked outside a recipe",
        "p.yaml:g: warning: create.type: object type 'ticket' is not built in: "
        "not checked outside a recipe",
        "p.yaml:s: warning: process: process 'child' is not checked outside a recipe",
    ]
    assert validate_files([tmp_path / "p.yaml"])[0].severity == "warning"


def test_a_folder_named_processes_without_recipe_files_is_not_a_recipe(tmp_path: Path) -> None:
    folder = tmp_path / "processes"
    folder.mkdir()
    (folder / "p.yaml").write_text(flow("{type: join, next: done}"))
    assert recipe_root(folder / "p.yaml") is None
    assert recipe_root(tmp_path / "p.yaml") is None


# ---- inside a recipe: resolved from the recipe, errors for what it lacks ---------------------

PARENT = process(
    "start: {type: start, next: s}",
    "s: {type: subprocess, process: child, vars: {topic: '=object.number'},"
    " exits: {ok: done, lost: done}}",
    "done: {type: end}",
    head=HEAD.replace("key: p", "key: parent"),
)
CHILD = process(
    "start: {type: start, next: w}",
    "w: {type: wait_for, until: \"vars.topic == 'x'\", next: c}",
    "c: {type: condition, branches: [{if: 'object.amount > 1', next: ok}], else: bad}",
    "ok: {type: end, result: ok}",
    "bad: {type: end, result: failed}",
    head=HEAD.replace("key: p", "key: child") + "draft: true\n",
)


def test_subprocess_exits_must_match_child_results(tmp_path: Path) -> None:
    root = write_recipe(tmp_path / "r", {"parent": PARENT, "child": CHILD})
    assert lines(tmp_path, root / "processes" / "parent.yaml") == [
        "r/processes/parent.yaml:s: exit 'exits.lost': 'child' has no result 'lost' (failed, ok)",
        "r/processes/parent.yaml:s: warning: result 'failed' of 'child' has no exit: "
        "that branch ends",
    ]


def test_vars_passed_by_a_parent_count_as_declared(tmp_path: Path) -> None:
    root = write_recipe(tmp_path / "r", {"parent": PARENT, "child": CHILD})
    assert lines(tmp_path, root / "processes" / "child.yaml") == []


def test_vars_set_by_create_and_generate_password_count_as_declared(tmp_path: Path) -> None:
    text = flow(
        "{type: operation, create: {type: user, data: {name: '=object.number'}, as: new_user},"
        " generate_password: {as: pw}, next: m}",
        "m: {type: message, to: '=vars.new_user', body: '{{ vars.pw }}',"
        " subject: '=vars.pw', next: done}",
    )
    root = write_recipe(tmp_path / "r", {"p": text})
    assert lines(tmp_path, root / "processes" / "p.yaml") == []


RECIPE_ERRORS = [
    (
        "unknown-object-type",
        flow("{type: join, next: done}", head=HEAD.replace("object: order", "object: ticket")),
        "p.yaml: unknown object type 'ticket'",
    ),
    (
        "unknown-create-type",
        flow("{type: operation, create: {type: ticket}, next: done}"),
        "p.yaml:b: create.type: unknown object type 'ticket'",
    ),
    (
        "unknown-query-type",
        flow("{type: for_each, query: {type: ticket}, process: p, next: done}"),
        "p.yaml:b: query.type: unknown object type 'ticket'",
    ),
    (
        "missing-template",
        flow("{type: message, template: hello, next: done}"),
        "p.yaml:b: template: template 'hello' does not exist",
    ),
    (
        "missing-subprocess",
        flow("{type: subprocess, process: nope, next: done}"),
        "p.yaml:b: process: process 'nope' does not exist in the recipe",
    ),
    (
        "missing-for-each-process",
        flow("{type: for_each, query: {type: order}, process: nope, next: done}"),
        "p.yaml:b: process: process 'nope' does not exist in the recipe",
    ),
    (
        "subprocess-other-type",
        flow("{type: subprocess, process: ev, next: done}"),
        "p.yaml:b: process: 'ev' runs on type 'event', but this block starts it on type 'order'",
    ),
    (
        "for-each-other-type",
        flow("{type: for_each, query: {type: user}, process: ev, next: done}"),
        "p.yaml:b: process: 'ev' runs on type 'event', but this block starts it on type 'user'",
    ),
    (
        "unknown-group",
        flow("{type: operation, add_to_group: vip, next: done}"),
        "p.yaml:b: add_to_group: group 'vip' does not exist (groups: watch-only, with-homework)",
    ),
    (
        "unknown-group-removed",
        flow("{type: operation, remove_from_group: [watch-only, vip], next: done}"),
        "p.yaml:b: remove_from_group: group 'vip' does not exist "
        "(groups: watch-only, with-homework)",
    ),
    (
        "unknown-stage",
        flow("{type: operation, stage: done, next: done}", head=HEAD.replace("order", "event")),
        "p.yaml:b: stage: stage 'done' does not exist on type 'event' "
        "(new, preparation, registration, held, cancelled)",
    ),
    (
        "unknown-launch-stage",
        flow(
            "{type: join, next: done}",
            head=HEAD.replace("order", "event") + "launch: {on: stage, stage: draft}\n",
        ),
        "p.yaml: launch.stage: stage 'draft' does not exist on type 'event' "
        "(new, preparation, registration, held, cancelled)",
    ),
    (
        "unknown-form",
        flow("{type: join, next: done}", head=HEAD + "launch: {on: event, event: 'form:signup'}\n"),
        "p.yaml: launch.event: form 'signup' does not exist",
    ),
    (
        "declared-field-checked",
        flow(
            "{type: wait_for, until: \"object.cancel_reason == 'x' and object.reason\", next: done}"
        ),
        "p.yaml:b: until: type 'order' has no field 'reason' (object.reason)",
    ),
    (
        "dictionary-value",
        flow("{type: operation, set: {cancel_reason: cheap}, next: done}"),
        "p.yaml:b: set.cancel_reason: 'cheap' is not in dictionary cancel_reasons "
        "(too_expensive, other)",
    ),
    (
        "query-where-on-query-type",
        flow(
            "{type: for_each, query: {type: event, where: 'object.amount > 1'},"
            " process: ev, next: done}"
        ),
        "p.yaml:b: query.where: type 'event' has no field 'amount' (object.amount)",
    ),
    (
        "link-to-custom-type",
        flow(
            "{type: join, next: done}",
            head=HEAD.replace("order", "event")
            + "launch: {on: create, entry: 'object.host.nick'}\n",
        ),
        "p.yaml: launch.entry: type 'user' has no field 'nick' (object.host.nick)",
    ),
]

EVENT_CHILD = process(
    "start: {type: start, next: e}",
    "e: {type: end}",
    head="key: ev\nname: Ev\nobject: event\ndraft: true\n",
)


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in RECIPE_ERRORS], ids=[c[0] for c in RECIPE_ERRORS]
)
def test_recipe_error(tmp_path: Path, text: str, expected: str) -> None:
    root = write_recipe(tmp_path / "r", {"p": text, "ev": EVENT_CHILD})
    found = lines(tmp_path, root / "processes" / "p.yaml")
    assert f"r/processes/{expected}" in found


def test_recipe_resolves_what_outside_warns_about(tmp_path: Path) -> None:
    text = process(
        "start: {type: start, next: m}",
        "m: {type: message, template: hello, next: g}",
        "g: {type: operation, add_to_group: with-homework, stage: registration, next: s}",
        "s: {type: subprocess, process: ev, next: w}",
        "w: {type: wait_for, until: \"object.kind == 'online' and object.stage == 'held'\","
        " next: done}",
        "done: {type: end}",
        head=HEAD.replace("object: order", "object: event")
        + "launch: {on: event, event: 'form:signup'}\n",
    )
    root = write_recipe(
        tmp_path / "r",
        {"p": text, "ev": EVENT_CHILD},
        {
            "templates/hello.md": "---\nsubject: Hi {{ object.kind }}\n---\nHello\n",
            "forms/signup.yaml": "fields: {}\n",
        },
    )
    assert lines(tmp_path, root / "processes" / "p.yaml") == []
    (tmp_path / "p.yaml").write_text(text)
    assert all(" warning: " in line for line in lines(tmp_path, tmp_path / "p.yaml"))


def test_duplicate_process_key_in_the_recipe(tmp_path: Path) -> None:
    root = write_recipe(tmp_path / "r", {"a": EVENT_CHILD, "b": EVENT_CHILD})
    assert lines(tmp_path, root / "processes" / "b.yaml") == [
        "r/processes/b.yaml: process key 'ev' is used by r/processes/a.yaml too"
    ]


def test_broken_objects_file_is_reported_and_types_are_not_resolved(tmp_path: Path) -> None:
    root = write_recipe(tmp_path / "r", {"p": flow("{type: join, next: done}")})
    (root / "objects.yaml").write_text("types:\n  order:\n    colour: red\n")
    found = lines(tmp_path, root / "processes" / "p.yaml")
    assert found == ["r/objects.yaml:types.order: unknown key 'colour'"]


def test_validate_recipe_checks_every_process_and_template(tmp_path: Path) -> None:
    root = write_recipe(
        tmp_path / "r",
        {
            "parent": PARENT,
            "child": CHILD,
            "broken": flow("{type: join, next: nowhere}"),
            "bad": "key: [\n",
        },
    )
    (root / "templates" / "hi.md").write_text("---\nsubject: Hi {{ x\n---\nBody\n")
    recipe = load_recipe(root)
    found = [str(d).replace(f"{tmp_path}/", "") for d in validate_recipe(recipe)]
    assert found == [
        "r/processes/broken.yaml:b: exit 'next' names no block 'nowhere'",
        "r/processes/broken.yaml:done: no path from 'start' reaches this block",
        "r/processes/parent.yaml:s: exit 'exits.lost': 'child' has no result 'lost' (failed, ok)",
        "r/processes/parent.yaml:s: warning: result 'failed' of 'child' has no exit: "
        "that branch ends",
        "r/templates/hi.md: subject: template does not parse: "
        "unexpected end of template, expected 'end of print statement'.",
    ]
    assert [str(p).replace(f"{tmp_path}/", "") for p in recipe.problems] == [
        "r/processes/bad.yaml:2: invalid YAML: expected the node content, but found '<stream end>'"
    ]


def test_validate_process_directly_with_a_given_context(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(flow("{type: subprocess, process: child, exits: {ok: done}}"))
    spec, problems = load_process_file(path)
    assert spec is not None and problems == []
    child, _ = load_process_file(_write(tmp_path / "c.yaml", CHILD))
    assert child is not None
    found = validate_process(
        spec, source="p", schema=None, templates={}, processes={"child": child}, in_recipe=True
    )
    assert [str(d) for d in found] == [
        "p:b: warning: result 'failed' of 'child' has no exit: that branch ends"
    ]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---- file formats --------------------------------------------------------------------------


def test_yaml_1_2_keeps_yes_and_no_as_strings(tmp_path: Path) -> None:
    text = flow(
        "{type: question, options: {yes: done, no: n, on: done, off: done}}",
        "n: {type: operation, set: {status: no}, next: done}",
    )
    path = _write(tmp_path / "p.yaml", text)
    spec, problems = load_process_file(path)
    assert problems == [] and spec is not None
    block = spec.blocks["b"]
    assert isinstance(block, QuestionBlock)
    assert list(block.options) == ["yes", "no", "on", "off"]
    assert lines(tmp_path, path) == []


def test_json_process_file(tmp_path: Path) -> None:
    data = {
        "key": "p",
        "name": "P",
        "object": "order",
        "blocks": {
            "start": {"type": "start", "next": "b"},
            "b": {"type": "counter", "counter": "calls", "add": 1, "next": "done"},
            "done": {"type": "end"},
        },
    }
    path = _write(tmp_path / "p.json", json.dumps(data))
    assert lines(tmp_path, path) == [
        "p.json:b: unknown counter 'calls' (declare it in 'counters:')"
    ]
    assert lines(tmp_path, _write(tmp_path / "bad.json", "{")) == [
        "bad.json:1: invalid JSON: Expecting property name enclosed in double quotes"
    ]


def test_not_a_mapping(tmp_path: Path) -> None:
    assert check(tmp_path, "- a\n- b\n") == ["p.yaml: a process file must be a mapping"]


def test_diagnostics_come_file_first_then_in_block_order(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """\
        key: p
        name: P
        object: order
        launch: {on: periodic}
        blocks:
          z: {type: counter, counter: x, set: 1, next: a}
          a: {type: end}
          start: {type: start, next: z}
        """
    )
    assert check(tmp_path, text) == [
        "p.yaml: 'on: periodic' needs 'launch.every'",
        "p.yaml:z: unknown counter 'x' (declare it in 'counters:')",
    ]


def test_relative_paths_resolve_their_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_recipe(tmp_path / "r", {"p": flow("{type: operation, add_to_group: vip, next: done}")})
    monkeypatch.chdir(tmp_path)
    expected = "processes/p.yaml:b: add_to_group: group 'vip' does not exist "
    expected += "(groups: watch-only, with-homework)"
    assert [str(d) for d in validate_files([Path("r/processes/p.yaml")])] == [f"r/{expected}"]
    monkeypatch.chdir(tmp_path / "r" / "processes")
    assert [str(d) for d in validate_files([Path("p.yaml")])] == [expected[len("processes/") :]]
