"""Property tests: random valid process graphs driven by random event sequences.

* nothing raises (a failing block becomes an incident, never an exception);
* after every step each instance is waiting (every token holds a wait) or has ended;
* the same inputs give the same trace; the state survives a JSON round trip unchanged.
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlane.core.errors import Refused
from flowlane.engine.state import from_dict, to_dict
from flowlane.model.definition import Definition
from flowlane.model.process import ProcessFile
from flowlane.objects import build_schema
from flowlane.services.account import Account
from flowlane.store.memory import MemoryStore

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Moscow"))
STATUSES = ["new", "in_work", "paid", "cancelled"]
KINDS = [
    "counter",
    "condition",
    "delay",
    "question",
    "fork",
    "join",
    "end",
    "operation",
    "wait_for",
    "task",
    "message",
    "subprocess",
    "for_each",
]

CHILD = {
    "key": "c",
    "name": "child",
    "object": "order",
    "draft": True,
    "blocks": {
        "start": {"type": "start", "next": "ask"},
        "ask": {
            "type": "question",
            "title": "child",
            "assign": "object_manager",
            "options": {"a": "ok", "b": "no"},
        },
        "ok": {"type": "end", "outcome": "positive", "result": "ok"},
        "no": {"type": "end", "outcome": "negative", "result": "no"},
    },
}


def _block(draw: st.DrawFn, kind: str, target: st.SearchStrategy[str | None]) -> dict[str, Any]:  # noqa: C901 - one branch per block type
    if kind == "counter":
        return {"type": "counter", "counter": "c", "add": 1, "next": draw(target)}
    elif kind == "condition":
        limit = draw(st.integers(0, 4))
        return {
            "type": "condition",
            "else": draw(target),
            "branches": [{"if": f"counters.c < {limit}", "next": draw(target)}],
        }
    elif kind == "delay":
        return {
            "type": "delay",
            "for": f"{draw(st.integers(1, 90))}m",
            "next": draw(target),
        }
    elif kind == "question":
        return {
            "type": "question",
            "title": "Q {{ object.number }}",
            "assign": "object_manager",
            "options": {"a": draw(target), "b": draw(target)},
        }
    elif kind == "fork":
        return {"type": "fork", "next": draw(st.lists(target, min_size=1, max_size=3))}
    elif kind == "join":
        return {"type": "join", "next": draw(target)}
    elif kind == "end":
        return {
            "type": "end",
            "outcome": draw(st.sampled_from(["positive", "neutral", "negative"])),
        }
    elif kind == "operation":
        return {
            "type": "operation",
            "set": {"status": draw(st.sampled_from(STATUSES))},
            "next": draw(target),
        }
    elif kind == "wait_for":
        return {
            "type": "wait_for",
            "until": f"object.status == '{draw(st.sampled_from(STATUSES))}'",
            "timeout": draw(st.sampled_from([None, "1h", "2d"])),
            "next": draw(target),
            "on_timeout": draw(target),
        }
    elif kind == "message":
        return {
            "type": "message",
            "to": draw(st.sampled_from(["client", "manager"])),
            "subject": "S {{ object.number }}",
            "body": "b",
            "confirm": draw(st.booleans()),
            "next": draw(target),
        }
    elif kind == "subprocess":
        return {
            "type": "subprocess",
            "process": "c",
            "exits": {"ok": draw(target), "no": draw(target)},
        }
    elif kind == "for_each":
        return {
            "type": "for_each",
            "query": {"type": "order"},
            "process": "c",
            "wait": draw(st.sampled_from(["all", "none"])),
            "next": draw(target),
        }
    else:
        return {
            "type": "task",
            "title": "T",
            "assign": "object_manager",
            "wait": draw(st.booleans()),
            "next": draw(target),
        }


@st.composite
def processes(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(min_value=2, max_value=10))
    ids = [f"b{i}" for i in range(n)]
    target = st.one_of(st.none(), st.sampled_from(ids))
    blocks: dict[str, Any] = {"start": {"type": "start", "next": ids[0]}}
    for bid in ids:
        blocks[bid] = _block(draw, draw(st.sampled_from(KINDS)), target)
    return {
        "key": "p",
        "name": "random",
        "object": "order",
        "counters": ["c"],
        "loop_limit": 200,
        "blocks": blocks,
    }


actions = st.lists(
    st.one_of(
        st.tuples(st.just("answer"), st.sampled_from(["a", "b"])),
        st.tuples(st.just("advance"), st.integers(1, 3000)),
        st.tuples(st.just("update"), st.sampled_from(STATUSES)),
        st.tuples(st.just("status"), st.just("done")),
        st.tuples(st.just("cancel"), st.just("")),
        st.tuples(st.just("start"), st.just("")),
    ),
    max_size=12,
)


def _account(spec: dict[str, Any]) -> Account:
    store = MemoryStore(schema=build_schema(None))
    account = Account(store, T0)
    account.deploy(Definition.build(ProcessFile.model_validate(spec)))
    account.deploy(Definition.build(ProcessFile.model_validate(CHILD)))
    account.create_object(
        "user", {"name": "Boris", "role": "manager"}, object_id="boris", launches=False
    )
    account.create_object(
        "order",
        {"number": "A-1", "status": "new", "manager": "boris"},
        object_id="o1",
        launches=False,
    )
    return account


def _advance(account: Account, minutes: int) -> None:
    target = account.now + timedelta(minutes=minutes)
    while (timer := account.store.next_timer(target)) is not None:
        account.runner.now = max(account.runner.now, timer.due_at)
        account.runner.fire(timer)
        account.runner.run()
    account.runner.now = target


def _act(account: Account, action: tuple[str, Any]) -> None:
    kind, arg = action
    open_tasks = [t for t in account.store.tasks.values() if not t.closed]
    if kind == "answer":
        for task in open_tasks:
            if task.options:
                account.answer(
                    task,
                    option=arg if arg in task.options else task.options[0],
                    fields={},
                    by="boris",
                )
                return
    elif kind == "status":
        for task in open_tasks:
            if task.workflow is not None:
                account.change_status(task, arg, by="boris")
                return
    elif kind == "advance":
        _advance(account, arg)
    elif kind == "update":
        account.update_object("o1", {"status": arg})
    elif kind == "cancel":
        account.cancel("p", "o1", by=None)
    else:
        account.start("p", "o1")


def _check_invariants(account: Account) -> None:
    for state in account.store.instances.values():
        assert state.status in ("running", "ended", "cancelled", "incident"), state.status
        if state.status == "running":
            assert state.tokens, f"{state.id} runs without tokens"
            assert all(t.wait is not None for t in state.tokens), state.tokens
        else:
            assert state.status == "incident" or not state.tokens
        assert from_dict(json.loads(json.dumps(to_dict(state)))) == state


def _run(spec: dict[str, Any], script: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    account = _account(spec)
    account.start("p", "o1")
    _check_invariants(account)
    for action in script:
        with contextlib.suppress(Refused):
            _act(account, action)
        _check_invariants(account)
    return list(account.store.history())


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    derandomize=True,
)
@given(processes(), actions)
def test_random_processes_never_raise_and_always_wait_or_end(
    spec: dict[str, Any], script: list[tuple[str, Any]]
) -> None:
    first = _run(spec, script)
    second = _run(spec, script)
    assert first == second
