"""Stage moves: refusals that name the object and the reason, stage launches under
``repeat``, and guards — processes launched on a stage that send the object back."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tests.support import RunScenario, assert_ok, scenario, write_recipe

from flowlane.core.errors import Refused
from flowlane.model.recipe import load_recipe
from flowlane.model.validate import validate_recipe
from flowlane.runtime.simulate import build_account
from flowlane.services.account import Account, MoveResult

EVENTS = """
types:
  event:
    stages: [new, preparation, registration, materials]
    success: held
    failure: cancelled
    fields:
      kind: {type: link, to: dictionary:event_type}
      address: {type: string}
      responsible: {type: link, to: user}
dictionaries:
  event_type: [offline, online]
"""

PREP = """
key: prep
name: preparation task
object: event
launch: {on: stage, stage: preparation}
blocks:
  start: {type: start, next: todo}
  todo: {type: task, title: Prepare, assign: "=object.responsible"}
"""

GUARD = """
key: guard
name: readiness guard
object: event
launch: {on: stage, stage: registration, repeat: true}
blocks:
  start: {type: start, next: ready}
  ready:
    type: condition
    branches: [{if: "object.address", next: null}]
    else: back
  back:
    type: operation
    name: Back to preparation
    stage: preparation
    reason: "{{ object.kind }} event without an address"
"""

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Moscow"))


def _account(tmp_path: Path, processes: dict[str, str]) -> tuple[Account, list[dict[str, Any]]]:
    root = write_recipe(tmp_path / "recipe", processes, objects=EVENTS)
    recipe = load_recipe(root)
    problems = [p for p in recipe.problems + validate_recipe(recipe) if p.severity == "error"]
    assert problems == []
    trace: list[dict[str, Any]] = []
    account = build_account(recipe, NOW, ZoneInfo("Europe/Moscow"), trace.append)
    with account.store.transaction():
        account.create_object(
            "user", {"name": "Boris", "email": "b@x.example", "role": "manager"}, object_id="boris"
        )
    return account, trace


def _do(account: Account, action: Any) -> Any:
    out: list[Any] = []
    account.attempt(lambda: out.append(action()))
    return out[0]


def _stage(account: Account, oid: str) -> Any:
    with account.store.transaction():
        return account.get_object(oid).data["stage"]


def test_a_guard_sends_the_move_back_with_its_reason(tmp_path: Path) -> None:
    account, trace = _account(tmp_path, {"prep": PREP, "guard": GUARD})
    _do(
        account,
        lambda: account.create_object(
            "event", {"kind": "online", "responsible": "boris"}, object_id="e1"
        ),
    )
    _do(account, lambda: account.move_stage("e1", "preparation", by="boris"))
    result = _do(account, lambda: account.move_stage("e1", "registration", by="boris"))
    assert result == MoveResult(
        moved=False,
        stage="preparation",
        reason="online event without an address",
        message="event e1: the move to 'registration' was sent back to 'preparation' by guard: "
        "online event without an address",
    )
    assert _stage(account, "e1") == "preparation"
    sent_back = [line for line in trace if line["event"] == "move_sent_back"]
    assert len(sent_back) == 1
    entry = sent_back[0]
    assert entry["process"] == "guard"
    assert entry["block"] == "back"
    assert entry["instance"] is not None
    with account.store.transaction():
        state = account.store.get_instance(entry["instance"])
        assert state is not None and state.process == "guard"
        stored = [h for h in account.store.history() if h["event"] == "move_sent_back"]
    assert entry["details"] == {
        "object": "e1",
        "from": "preparation",
        "to": "registration",
        "stage": "preparation",
        "reason": "online event without an address",
        "by": "boris",
    }
    assert stored == sent_back
    # the send-back entered preparation again: no second preparation task (no repeat)
    with account.store.transaction():
        assert len(account.store.find_tasks(block="todo")) == 1
    # with the address the guard (repeat: true) runs again and lets the move hold
    _do(account, lambda: account.update_object("e1", {"address": "Main st 1"}))
    again = _do(account, lambda: account.move_stage("e1", "registration", by="boris"))
    assert again == MoveResult(moved=True, stage="registration")
    assert _stage(account, "e1") == "registration"
    with account.store.transaction():
        guards = [st for st in account.store.instances_of("guard") if st.object_id == "e1"]
    assert len(guards) == 2
    assert len([line for line in trace if line["event"] == "move_sent_back"]) == 1


def test_the_reason_falls_back_to_the_block_name_then_to_the_process(tmp_path: Path) -> None:
    named = GUARD.replace('    reason: "{{ object.kind }} event without an address"\n', "")
    account, _ = _account(tmp_path, {"guard": named})
    _do(account, lambda: account.create_object("event", {"kind": "online"}, object_id="e1"))
    result = _do(account, lambda: account.move_stage("e1", "registration"))
    assert (result.moved, result.reason) == (False, "Back to preparation")

    bare = named.replace("    name: Back to preparation\n", "")
    account, _ = _account(tmp_path / "bare", {"guard": bare})
    _do(account, lambda: account.create_object("event", {"kind": "online"}, object_id="e1"))
    result = _do(account, lambda: account.move_stage("e1", "registration"))
    assert (result.moved, result.stage) == (False, "preparation")
    assert result.reason == "sent back to 'preparation' by guard"


def test_a_process_that_moves_the_object_on_is_no_guard(tmp_path: Path) -> None:
    onward = """
    key: onward
    name: skip registration
    object: event
    launch: {on: stage, stage: registration}
    blocks:
      start: {type: start, next: on}
      on: {type: operation, stage: materials}
    """
    account, trace = _account(tmp_path, {"onward": onward})
    _do(account, lambda: account.create_object("event", {"kind": "offline"}, object_id="e1"))
    result = _do(account, lambda: account.move_stage("e1", "registration"))
    assert result == MoveResult(moved=True, stage="materials")
    assert not [line for line in trace if line["event"] == "move_sent_back"]


def test_refused_moves_name_the_object_the_stage_and_the_reason(tmp_path: Path) -> None:
    account, trace = _account(tmp_path, {"guard": GUARD})
    _do(account, lambda: account.create_object("event", {"kind": "offline"}, object_id="e1"))
    with pytest.raises(Refused) as unknown:
        _do(account, lambda: account.move_stage("e1", "archive"))
    assert str(unknown.value) == (
        "event e1: unknown stage 'archive' "
        "(stages: new, preparation, registration, materials, held, cancelled)"
    )
    _do(account, lambda: account.move_stage("e1", "held"))
    lines = len(trace)
    with pytest.raises(Refused) as final:
        _do(account, lambda: account.move_stage("e1", "registration"))
    assert str(final.value) == (
        "event e1: stage 'held' is final; no move out of it (to 'registration')"
    )
    assert _stage(account, "e1") == "held"
    assert len(trace) == lines  # a refused move ran no launch
    _do(account, lambda: account.create_object("order", {"number": "A-1"}, object_id="o1"))
    with pytest.raises(Refused, match="order o1: type 'order' has no stages"):
        _do(account, lambda: account.move_stage("o1", "new"))
    # staying in a final stage is no move, and no refusal
    assert _do(account, lambda: account.move_stage("e1", "held")) == MoveResult(True, "held")


def test_stage_launches_enter_once_unless_repeat(run_scenario: RunScenario) -> None:
    steps = """
  - create: {type: event, id: e1, data: {kind: offline, responsible: boris}}
  - stage: {object: e1, to: preparation, by: boris}
  - stage: {object: e1, to: registration, by: boris}
  - stage: {object: e1, to: preparation, by: boris}
  - expect:
      tasks_created: {block: todo, object: e1, count: 1}
      open_tasks: [{block: todo, object: e1, assignee: boris}]
"""
    assert_ok(run_scenario({"prep": PREP}, scenario(steps), objects=EVENTS))
    repeating = PREP.replace("stage: preparation}", "stage: preparation, repeat: true}")
    steps_repeat = steps.replace("count: 1", "count: 2").replace(
        "open_tasks: [{block: todo, object: e1, assignee: boris}]",
        "open_tasks: [{block: todo, object: e1}, {block: todo, object: e1}]",
    )
    assert_ok(run_scenario({"prep": repeating}, scenario(steps_repeat), objects=EVENTS))


def test_creation_in_a_stage_counts_as_entering_it(run_scenario: RunScenario) -> None:
    steps = """
  - create: {type: event, id: e1, data: {kind: offline, responsible: boris, stage: preparation}}
  - expect: {tasks_created: {block: todo, object: e1, count: 1}}
  - stage: {object: e1, to: registration, by: boris}
  - stage: {object: e1, to: preparation, by: boris}
  - expect: {tasks_created: {block: todo, object: e1, count: 1}}
"""
    assert_ok(run_scenario({"prep": PREP}, scenario(steps), objects=EVENTS))


def test_a_sent_back_stage_step_counts_as_refused(run_scenario: RunScenario) -> None:
    steps = """
  - create: {type: event, id: e1, data: {kind: online, responsible: boris}}
  - stage: {object: e1, to: registration, by: boris}
  - expect:
      refused: "event e1: the move to 'registration' was sent back to 'preparation' by guard"
      object: {id: e1, fields: {stage: preparation}}
  - stage: {object: e1, to: registration, by: boris}
  - expect: {refused: online event without an address}
  - update: {object: e1, set: {address: Main st 1}}
  - stage: {object: e1, to: registration, by: boris}
  - expect: {refused: false, object: {id: e1, fields: {stage: registration}}}
"""
    result = run_scenario({"prep": PREP, "guard": GUARD}, scenario(steps), objects=EVENTS)
    assert_ok(result)
    refused = [line for line in result.trace if line["event"] == "refused"]
    assert [line["details"]["step"] for line in refused] == ["2", "4"]
    # the guard's own lines stay in the trace of a sent-back step, before the refusal
    events = [line["event"] for line in result.trace]
    first = events.index("refused")
    assert events[first - 1] == "move_sent_back"
    assert "instance_ended" in events[:first]


def test_reason_goes_only_with_stage(tmp_path: Path) -> None:
    bad = textwrap.dedent(
        """
        key: bad
        name: bad
        object: event
        blocks:
          start: {type: start, next: op}
          op: {type: operation, set: {address: x}, reason: "{{ broken"}
        """
    )
    root = write_recipe(tmp_path / "recipe", {"bad": bad}, objects=EVENTS)
    recipe = load_recipe(root)
    messages = [str(d) for d in validate_recipe(recipe) if d.severity == "error"]
    assert any("'reason' goes only with 'stage'" in m for m in messages), messages
    assert any("reason:" in m and "parse" in m for m in messages), messages
