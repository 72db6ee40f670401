"""Planning ``flowlane instance migrate``: real waiting states moved to another version."""

from __future__ import annotations

import dataclasses
import textwrap
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from flowlane.core.errors import Refused
from flowlane.engine import Ctx, InstanceState, ObjectRecord, Token, decide, to_dict
from flowlane.engine.events import (
    ChildEnded,
    Event,
    InstanceCancelled,
    InstanceStarted,
    StartChild,
    TaskAnswered,
    TimerFired,
)
from flowlane.engine.migrate import plan_many, plan_migration
from flowlane.model.definition import Definition
from flowlane.model.process import ProcessFile
from flowlane.model.yamlio import parse_text
from flowlane.objects import build_schema
from flowlane.store.memory import MemoryStore

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Moscow"))


def defn(blocks: str, version: int, *, key: str = "p", counters: str = "[]") -> Definition:
    head = f"key: {key}\nname: P\nobject: order\ncounters: {counters}\nblocks:\n"
    text = head + textwrap.indent(textwrap.dedent(blocks), "  ")
    spec = ProcessFile.model_validate(parse_text(text, source=f"{key}.yaml"))
    return Definition.build(spec, version=version)


WORLD = MemoryStore(schema=build_schema(None))
WORLD.deploy(
    defn(
        """
        start: {type: start, next: ask}
        ask: {type: question, title: C, assign: none, options: {a: ok}}
        ok: {type: end, outcome: positive, result: ok}
        """,
        1,
        key="c",
    )
)

V1 = defn(
    """
    start: {type: start, next: count}
    count: {type: counter, counter: c, set: 2, next: wait}
    wait: {type: delay, for: 1h, next: ask}
    ask: {type: question, title: Q, assign: none, options: {"yes": done, "no": done}}
    done: {type: end, outcome: positive, result: v1}
    """,
    1,
    counters="[c]",
)
ANSWER = """
    fine: {type: end, outcome: positive, result: v2}
"""
SAME = defn(  # the delay keeps its id; a new question follows it
    """
    start: {type: start, next: wait}
    wait: {type: delay, for: 2h, next: confirm}
    confirm: {type: question, title: Q2, assign: none, options: {ok: fine}}
    """
    + ANSWER,
    2,
    counters="[c, n]",
)
RENAMED = defn(  # ask is now check, with one more option
    """
    start: {type: start, next: wait}
    wait: {type: delay, for: 1h, next: check}
    check: {type: question, title: Q, assign: none, options: {"yes": fine, "no": fine, maybe: fine}}
    """
    + ANSWER,
    2,
)


def run(d: Definition, state: InstanceState, event: Event, minutes: int = 0) -> InstanceState:
    return decide(d, state, event, Ctx(T0 + timedelta(minutes=minutes), WORLD)).state


def start(d: Definition) -> InstanceState:
    return run(d, InstanceState("i1", d.key, d.version, None), InstanceStarted({}))


def wait_of(state: InstanceState, block: str) -> dict[str, object]:
    (tok,) = [t for t in state.tokens if t.block == block]
    assert tok.wait is not None
    return tok.wait


def refusal(state: InstanceState, source: Definition, target: Definition, **mapping: str) -> str:
    with pytest.raises(Refused) as info:
        plan_migration(state, source, target, mapping)
    return info.value.message


def at_ask() -> InstanceState:
    state = start(V1)
    return run(V1, state, TimerFired(str(wait_of(state, "wait")["timer"])), 60)


# ---- moves that keep every token valid --------------------------------------------------


def test_identity_keeps_the_timer_and_continues_on_the_new_version() -> None:
    state = start(V1)
    before = to_dict(state)
    moved = plan_migration(state, V1, SAME, {})
    assert to_dict(state) == before  # the input is not mutated
    assert (moved.version, moved.status, [t.block for t in moved.tokens]) == (
        2,
        "running",
        ["wait"],
    )
    assert moved.tokens[0].wait == state.tokens[0].wait  # same timer id
    assert moved.counters == {"c": 2, "n": 0}  # kept; the new counter starts at 0
    fired = run(SAME, moved, TimerFired(str(wait_of(moved, "wait")["timer"])), 60)
    task = str(wait_of(fired, "confirm")["task"])  # the new version's block
    done = run(SAME, fired, TaskAnswered(task, "ok", {}, "boris"), 61)
    assert (done.status, done.result) == ("ended", "v2")


def test_a_renamed_block_is_mapped_and_its_task_answered_there() -> None:
    state = at_ask()
    moved = plan_migration(state, V1, RENAMED, {"ask": "check"})
    assert [t.block for t in moved.tokens] == ["check"]
    assert moved.tokens[0].wait == state.tokens[0].wait  # same task id
    assert [t.block for t in state.tokens] == ["ask"]
    done = run(RENAMED, moved, TaskAnswered(str(wait_of(moved, "check")["task"]), "no", {}, None))
    assert (done.status, done.result) == ("ended", "v2")


# ---- refusals of the instance and the request -------------------------------------------


def test_only_running_instances_of_the_same_process_at_another_version() -> None:
    ended = run(V1, at_ask(), TaskAnswered(str(wait_of(at_ask(), "ask")["task"]), "yes", {}, None))
    assert ended.status == "ended"
    msg = "instance i1 is ended, not running: only waiting instances migrate"
    assert refusal(ended, V1, SAME) == msg
    cancelled = run(V1, start(V1), InstanceCancelled())
    assert refusal(cancelled, V1, SAME) == msg.replace("ended", "cancelled")
    incident = dataclasses.replace(start(V1), status="incident")
    assert refusal(incident, V1, SAME) == msg.replace("ended", "incident")
    other = defn("start: {type: start}\n", 2, key="q")
    assert refusal(start(V1), V1, other) == "instance i1 runs process p, not q"
    assert refusal(start(V1), other, SAME) == "instance i1 runs process p, not q"
    v3 = dataclasses.replace(V1, version=3)
    assert refusal(start(V1), v3, SAME) == "instance i1 is at version 1, not at version 3"
    assert refusal(start(V1), V1, V1) == "instance i1 is already at version 1"


def test_unknown_names_in_the_mapping_are_errors() -> None:
    state = start(V1)
    msg = refusal(state, V1, SAME, nope="wait")
    assert msg == "instance i1: mapping nope=wait: no block nope in version 1"
    msg = refusal(state, V1, SAME, wait="nope")
    assert msg == "instance i1: mapping wait=nope: no block nope in version 2"
    msg = refusal(state, V1, SAME, ask="nope")  # also where no token stands
    assert msg == "instance i1: mapping ask=nope: no block nope in version 2"


def test_tokens_must_be_at_rest_and_have_a_block_to_go_to() -> None:
    moving = InstanceState("i1", "p", 1, None, tokens=[Token(1, "wait")])
    msg = "instance i1: the token at block wait is not waiting (not at rest)"
    assert refusal(moving, V1, SAME) == msg
    assert refusal(at_ask(), V1, SAME) == (
        "instance i1: would strand a token at block ask: no block ask in version 2; "
        "map it with ask=<block>"
    )


# ---- refusals of a block that cannot hold the token's wait -------------------------------


def test_a_waiting_delay_cannot_become_a_question() -> None:
    assert refusal(start(V1), V1, SAME, wait="confirm") == (
        "instance i1: cannot move the token at block wait to block confirm of version 2: "
        "a waiting delay cannot become a question"
    )


def test_a_question_must_keep_every_option_its_open_task_offers() -> None:
    fewer = defn('start: {type: start}\nask: {type: question, options: {"yes": x}}\n', 2)
    assert refusal(at_ask(), V1, fewer) == (
        "instance i1: cannot move the token at block ask to block ask of version 2: "
        "its task may be answered with no, which it has no option for"
    )


def test_delay_task_and_wait_for_timer_need_a_block_that_waits_the_same_way() -> None:
    asked = defn("start: {type: start, next: d}\nd: {type: delay, ask: {assign: none}}\n", 1)
    timed = defn("start: {type: start, next: d}\nd: {type: delay, for: 1h}\n", 2)
    assert wait_of(start(asked), "d")["k"] == "task"
    assert refusal(start(asked), asked, timed) == (
        "instance i1: cannot move the token at block d to block d of version 2: "
        "it waits for a task, which this delay does not"
    )
    back = plan_migration(start(timed), timed, dataclasses.replace(asked, version=3), {})
    assert wait_of(back, "d")["k"] == "timer"  # an asking delay also waits on a timer
    until = "{type: wait_for, until: 'vars.go == 1', timeout: 1h, next: x, on_timeout: y}"
    cond = defn(f"start: {{type: start, next: w}}\nw: {until}\n", 1)
    forever = defn("start: {type: start}\nw: {type: wait_for, until: 'vars.go == 1'}\n", 2)
    assert refusal(start(cond), cond, forever) == (
        "instance i1: cannot move the token at block w to block w of version 2: "
        "its timeout timer is running and it has no timeout"
    )
    task = defn("start: {type: start}\nw: {type: task, wait: false}\n", 2)
    assert refusal(start(cond), cond, task, w="w") == (
        "instance i1: cannot move the token at block w to block w of version 2: "
        "a waiting wait_for cannot become a task"
    )


SUB1 = defn(
    "start: {type: start, next: sub}\nsub: {type: subprocess, process: c, exits: {ok: x}}\n", 1
)


def test_a_subprocess_keeps_its_child_and_routes_its_result_on_the_new_version() -> None:
    decision = decide(SUB1, InstanceState("i1", "p", 1, None), InstanceStarted(), Ctx(T0, WORLD))
    (child,) = [c.child_id for c in decision.commands if isinstance(c, StartChild)]
    later = defn(
        """
        start: {type: start}
        sub: {type: subprocess, process: c, exits: {ok: after, "no": x}}
        after: {type: delay, for: 1h, next: x}
        """,
        2,
    )
    moved = plan_migration(decision.state, SUB1, later, {})
    assert moved.children == [child] and wait_of(moved, "sub") == {"k": "child", "child": child}
    resumed = run(later, moved, ChildEnded(child, "positive", "ok"))
    assert wait_of(resumed, "after")["k"] == "timer"
    assert resumed.children == []


def test_a_subprocess_must_start_the_same_process_and_route_the_same_results() -> None:
    state = run(SUB1, InstanceState("i1", "p", 1, None), InstanceStarted())
    other = defn("start: {type: start}\nsub: {type: subprocess, process: d}\n", 2)
    prefix = "instance i1: cannot move the token at block sub to block sub of version 2: "
    assert refusal(state, SUB1, other) == f"{prefix}its children run process c and it starts d"
    fewer = defn('start: {type: start}\nsub: {type: subprocess, process: c, exits: {"no": x}}\n', 2)
    assert refusal(state, SUB1, fewer) == f"{prefix}it has no exit for the child's result (ok)"


def test_a_for_each_keeps_its_children_only_where_it_still_waits_for_them() -> None:
    WORLD.put_object(ObjectRecord("o7", "order", {"number": "A-7"}), T0)
    each = "{type: for_each, query: {type: order}, process: c, next: x}"
    src = defn(f"start: {{type: start, next: e}}\ne: {each}\nx: {{type: end}}\n", 1)
    state = run(src, InstanceState("i1", "p", 1, None), InstanceStarted())
    children = wait_of(state, "e")["children"]
    assert children == state.children and len(state.children) == 1
    later = defn(f"start: {{type: start}}\ne: {each.replace('x}', 'y}')}\ny: {{type: delay}}\n", 2)
    moved = plan_migration(state, src, later, {})
    assert wait_of(moved, "e")["children"] == children
    prefix = "instance i1: cannot move the token at block e to block e of version 2: "
    none = later.spec.blocks["e"].model_copy(update={"wait": "none"})
    no_wait = dataclasses.replace(later, spec=later.spec.model_copy(update={"blocks": {"e": none}}))
    assert (
        refusal(state, src, no_wait)
        == f"{prefix}it waits for child instances, which this for_each does not"
    )
    other = defn("start: {type: start}\ne: {type: for_each, query: {type: order}, process: d}\n", 2)
    assert refusal(state, src, other) == f"{prefix}its children run process c and it starts d"


# ---- joins -----------------------------------------------------------------------------

JOIN1 = defn(
    """
    start: {type: start, next: f}
    f: {type: fork, next: [qa, db]}
    qa: {type: question, assign: none, options: {a: j}}
    db: {type: delay, for: 1h, next: j}
    j: {type: join, next: done}
    done: {type: end, outcome: positive, result: v1}
    """,
    1,
)


def at_join() -> InstanceState:
    state = start(JOIN1)
    state = run(JOIN1, state, TaskAnswered(str(wait_of(state, "qa")["task"]), "a", {}, None))
    assert wait_of(state, "j") == {"k": "join"}
    return state


def join2(qa_next: str, db_next: str = "j", extra: str = "") -> Definition:
    return defn(
        f"""
        start: {{type: start, next: f}}
        f: {{type: fork, next: [qa2, db{extra}]}}
        qa2: {{type: question, assign: none, options: {{a: {qa_next}}}}}
        db: {{type: delay, for: 1h, next: {db_next}}}
        j: {{type: join, next: fin}}
        fin: {{type: end, outcome: positive, result: v2}}
        dc: {{type: delay, for: 1h, next: {"j" if extra else "fin"}}}
        """,
        2,
    )


def test_a_join_keeps_its_arrived_branch_under_the_new_name_and_completes() -> None:
    state = at_join()
    target = join2("j")
    moved = plan_migration(state, JOIN1, target, {"qa": "qa2"})
    (tok,) = [t for t in moved.tokens if t.block == "j"]
    assert tok.came_from == "qa2" and [t.came_from for t in state.tokens if t.block == "j"] == [
        "qa"
    ]
    done = run(target, moved, TimerFired(str(wait_of(moved, "db")["timer"])), 60)
    assert (done.status, done.result) == ("ended", "v2")


def test_a_join_refuses_what_would_leave_its_tokens_waiting_forever() -> None:
    state = at_join()
    where = "instance i1: would strand the tokens at join j"
    msg = refusal(state, JOIN1, join2("fin"), qa="qa2")
    assert msg == f"{where}: qa2 does not lead to j in version 2"
    msg = refusal(state, JOIN1, join2("j", db_next="fin"), qa="qa2")
    assert msg == f"{where}: all its branches have arrived, none would release it"
    msg = refusal(state, JOIN1, join2("j", extra=", dc"), qa="qa2")
    assert msg == f"{where}: no token can still arrive from dc"


# ---- batches ---------------------------------------------------------------------------


def test_plan_many_collects_refusals_instead_of_raising() -> None:
    good = start(V1)
    ended = dataclasses.replace(start(V1), id="i2", status="ended")
    lost = dataclasses.replace(start(V1), id="i3", version=5)
    planned, refusals = plan_many([good, ended, lost], {1: V1}.__getitem__, SAME, {})
    assert [(s.id, s.version) for s in planned] == [("i1", 2)]
    assert refusals == [
        "instance i2 is ended, not running: only waiting instances migrate",
        "instance i3: version 5 of p is not deployed",
    ]
    assert plan_many([good], {1: V1}.__getitem__, SAME, {})[1] == []
