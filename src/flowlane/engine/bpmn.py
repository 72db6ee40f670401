"""Executing compiled standard BPMN (ADR 0012, stage 1): a pure, deterministic interpreter.

:class:`BpmnRun` runs a :class:`~flowlane.model.bpmn_compile.BpmnProgram`. Its whole state
is one JSON-serializable dict (:attr:`BpmnRun.state`; ``BpmnRun(program, state)`` resumes
it), so a later stage can host it in ``decide()`` and the durable store; for now the
conformance harness drives it. Time is a virtual clock moved only by :meth:`advance`.

Semantics (ADR 0012 "Token and scope model"):

* A **token** sits at a node of one **scope instance** and remembers the sequence flow it
  arrived by; each token carries its own copy of the variables (SpiffWorkflow's model, the
  manifest's convention 3); joins deep-merge the arriving tokens' data in arrival order.
* A scope instance (the process, an embedded sub-process, a called process) completes when
  it holds no token and no active child scope; its result is the data of its ending tokens
  (merged in order), handed back to the activity that opened it. The root scope completing
  completes the instance.
* none start / nodes without incoming flow start a scope; a none end consumes its token;
  a terminate end ends its enclosing scope (cancelling everything inside).
* tasks: ``userTask`` / ``manualTask`` (and ``task`` in ``wait`` mode) wait for
  :meth:`complete`; ``serviceTask`` is a no-op; ``scriptTask`` runs the safe statement
  subset on the token's data.
* exclusive gateway: outgoing flows in document order, the first true condition, else the
  default, else the instance stops in **error at the gateway** (:attr:`error_at`).
  Parallel gateway: split to all; a join waits for a token on *every* incoming flow (of
  the same scope instance). Inclusive gateway: split on every true condition (default
  only when none); a join fires when each incoming flow without a token can no longer
  receive one from any other token of its scope instance.
* call activity: a child scope over the callee's definition; without a process
  ``ioSpecification`` all variables go in and the child's final variables replace the
  caller's (deletions propagate); with one only the declared input / output ids pass, a
  missing one being an error at the call activity.
* intermediate catch events and boundary events (interrupting or not) for timers
  (duration, date), messages (by name) and signals (by name).

Any failure inside a step (a script error, no gateway flow) sets :attr:`status` ``error``
with :attr:`error_at` = the element id; nothing runs after it. So does an unexpected
exception of a step (a ``TypeError``, ``RecursionError``, ``MemoryError``...): it never
escapes, the run stops in error at the element that was running (the process when none).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flowlane.core.errors import FlowlaneError, Refused
from flowlane.engine import bpmn_data, bpmn_events
from flowlane.model.bpmn_compile import (
    BpmnDefinition,
    BpmnProgram,
    Node,
    iso_timer_value,
)

MAX_STEPS = 10_000
"""Loop guard: node executions without a wait in one call."""

State = dict[str, Any]
Token = dict[str, Any]


class _Stop(Exception):
    """Raised inside a step when the instance entered the error state."""


@dataclass(frozen=True)
class ReadyTask:
    token: str
    node: str
    name: str | None
    data: dict[str, Any]


def deep_merge(into: dict[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``other`` into ``into`` (dicts recursively, everything else replaced)."""
    for k, v in other.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            deep_merge(into[k], v)
        else:
            into[k] = copy.deepcopy(v)
    return into


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class BpmnRun:
    """One running instance of a compiled program (see the module docstring)."""

    def __init__(self, program: BpmnProgram, state: State) -> None:
        self.program = program
        self.state = state
        self._steps = 0
        self._at: str | None = None

    # ---- construction ---------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        program: BpmnProgram,
        data: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> BpmnRun:
        moment = now or datetime(2026, 1, 1, tzinfo=UTC)
        state: State = {
            "version": 1,
            "main": program.main,
            "status": "running",
            "error_at": None,
            "error": None,
            "now": _epoch(moment),
            "next": 0,
            "scopes": {},
            "tokens": {},
            "completed": [],
            "trace": [],
            "ended_at": [],
            "data": {},
        }
        run = cls(program, state)
        run._guarded(
            lambda: run._open_scope(None, program.main, program.main, "process", dict(data or {}))
        )
        return run

    # ---- observation ----------------------------------------------------------------------

    @property
    def status(self) -> str:
        return str(self.state["status"])

    @property
    def error_at(self) -> str | None:
        value = self.state["error_at"]
        return None if value is None else str(value)

    @property
    def error(self) -> str | None:
        value = self.state["error"]
        return None if value is None else str(value)

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.state["data"])

    @property
    def completed(self) -> list[str]:
        """Activities in the order they completed."""
        return list(self.state["completed"])

    @property
    def trace(self) -> list[str]:
        """Every flow node in the order it completed (events and gateways included)."""
        return list(self.state["trace"])

    @property
    def ended_at(self) -> list[str]:
        return list(self.state["ended_at"])

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.state["now"], tz=UTC)

    def ready(self) -> list[ReadyTask]:
        return [
            ReadyTask(t["id"], t["node"], self._node(t).name, copy.deepcopy(t["data"]))
            for t in self._tokens()
            if t["wait"] == "task"
        ]

    def waiting(self) -> list[str]:
        """Catch and boundary events waiting for a timer, message or signal (node ids)."""
        return [t["node"] for t in self._tokens() if t["wait"] in ("timer", "message", "signal")]

    def next_timer(self) -> datetime | None:
        dues = [t["due"] for t in self._tokens() if t["wait"] == "timer"]
        return datetime.fromtimestamp(min(dues), tz=UTC) if dues else None

    # ---- driving --------------------------------------------------------------------------

    def complete(
        self,
        task: str,
        data: Mapping[str, Any] | None = None,
        *,
        replace: bool = False,
        token: bool = False,
    ) -> None:
        """Complete the first waiting task whose token id, node id or name is ``task`` (only
        the token id with ``token``: a host completing the task it mirrors)."""
        self._running()
        matches = [
            t
            for t in self._tokens()
            if t["wait"] == "task"
            and (t["id"] == task if token else task in (t["id"], t["node"], self._node(t).name))
        ]
        if not matches:
            raise Refused(f"no task {task!r} is waiting")
        t = matches[0]

        def go() -> None:
            if replace:
                t["data"] = copy.deepcopy(dict(data or {}))
            else:
                t["data"].update(copy.deepcopy(dict(data or {})))
            self._pass(t)

        self._guarded(go)

    def message(self, name: str, data: Mapping[str, Any] | None = None) -> bool:
        """Deliver a message by name to the first catch or boundary waiting for it."""
        self._running()
        delivered: list[bool] = []
        payload = copy.deepcopy(dict(data or {}))
        self._guarded(lambda: delivered.append(bpmn_events.deliver_message(self, name, payload)))
        return bool(delivered and delivered[0])

    def signal(self, name: str, data: Mapping[str, Any] | None = None) -> int:
        """Broadcast a signal to every catch and boundary waiting for it."""
        self._running()
        count: list[int] = []
        payload = copy.deepcopy(dict(data or {}))
        self._guarded(lambda: count.append(bpmn_events.broadcast(self, name, payload)))
        return count[0] if count else 0

    def advance(self, to: datetime | timedelta) -> None:
        """Move the virtual clock, firing due timers in order."""
        target = _epoch(to) if isinstance(to, datetime) else self.state["now"] + to.total_seconds()
        while self.status == "running":
            # a microsecond of slack: sums of float epochs may differ in the last bit
            due = [t for t in self._tokens() if t["wait"] == "timer" and t["due"] <= target + 1e-6]
            if not due:
                break
            first = min(due, key=lambda t: (t["due"], t["n"]))
            self.state["now"] = max(self.state["now"], first["due"])
            self._guarded(lambda fired=first: self._trigger(fired, None))
        self.state["now"] = max(self.state["now"], target)

    def advance_to_next_timer(self) -> bool:
        nxt = self.next_timer()
        if nxt is None or self.status != "running":
            return False
        self.advance(nxt)
        return True

    # ---- internals: bookkeeping -----------------------------------------------------------

    def _running(self) -> None:
        if self.status != "running":
            raise Refused(f"the instance is {self.status}")

    def _guarded(self, step: Any) -> None:
        self._steps = 0
        self._at = None
        try:
            step()
            self._run()
        except _Stop:
            pass
        except Exception as exc:  # any failure of a step stops the run in error
            element = self._at or str(self.state.get("main") or "process")
            self.state["status"] = "error"
            self.state["error_at"] = element
            self.state["error"] = f"internal error: {type(exc).__name__}: {exc}"

    def _fail(self, element: str, message: str) -> None:
        self.state["status"] = "error"
        self.state["error_at"] = element
        self.state["error"] = message
        raise _Stop

    def _tokens(self) -> list[Token]:
        return sorted(self.state["tokens"].values(), key=lambda t: t["n"])

    def _new_id(self, prefix: str) -> tuple[str, int]:
        self.state["next"] += 1
        n = self.state["next"]
        return f"{prefix}{n}", n

    def _definition(self, scope_id: str) -> BpmnDefinition:
        return self.program.definitions[self.state["scopes"][scope_id]["def"]]

    def _node(self, t: Token) -> Node:
        return self._definition(t["scope"]).nodes[t["node"]]

    def _token(
        self, node: str, scope: str, flow: str | None, data: dict[str, Any], **extra: Any
    ) -> Token:
        tid, n = self._new_id("t")
        t: Token = {
            "id": tid,
            "n": n,
            "node": node,
            "scope": scope,
            "flow": flow,
            "wait": None,
            "data": data,
        }
        t.update(extra)
        self.state["tokens"][tid] = t
        return t

    def _done(self, node: Node) -> None:
        self.state["trace"].append(node.id)
        if node.is_activity:
            self.state["completed"].append(node.id)
        bpmn_events.done(self, node)

    # ---- internals: the step loop ---------------------------------------------------------

    def _run(self) -> None:
        while self.state["status"] == "running":
            ready = [t for t in self._tokens() if t["wait"] is None]
            if not ready:
                if self._fire_inclusive_join() or bpmn_events.fire_conditions(self):
                    continue
                break
            self._steps += 1
            if self._steps > MAX_STEPS:
                self._fail(
                    ready[0]["node"], f"loop guard: more than {MAX_STEPS} steps without a wait"
                )
            self._execute(ready[0])

    def _execute(self, t: Token) -> None:
        self._at = t["node"]
        n = self._node(t)
        if t.pop("resume", False):
            self._done(n)
            self._leave(t, n)
            return
        if n.data is not None and bpmn_data.enter(self, t, n):
            return  # a loop took the token over
        if n.wait:
            t["wait"] = "task"
            self._arm(t, n)
            return
        handler = _HANDLERS.get(n.kind)
        if handler is None:  # pragma: no cover - the compiler refuses everything else
            self._fail(n.id, f"{n.kind} cannot run")
        else:
            handler(self, t, n)

    def _end(self, t: Token, n: Node) -> None:
        self._done(n)
        self.state["ended_at"].append(n.id)
        if n.terminate:
            self._end_scope(t["scope"], t["data"])
        else:
            self._consume(t)

    def _pass_node(self, t: Token, n: Node) -> None:
        self._pass(t)

    def _script(self, t: Token, n: Node) -> None:
        if n.script is not None:
            try:
                outcome = n.script.run(t["data"])
            except FlowlaneError as exc:
                if bpmn_events.activity_error(self, t, n):
                    return
                self._fail(n.id, f"script failed: {exc}")
            if outcome == "pending":  # a JavaScript body that never calls next()
                t["wait"] = "script"
                self._arm(t, n)
                return
        self._pass(t)

    def _parallel(self, t: Token, n: Node) -> None:
        if len(n.incoming) > 1:
            t["wait"] = "join"
            self._parallel_join(t, n)
        else:
            self._done(n)
            self._move(t, list(n.outgoing))

    def _inclusive(self, t: Token, n: Node) -> None:
        if len(n.incoming) > 1:
            t["wait"] = "join"
        else:
            self._done(n)
            self._move(t, self._inclusive_flows(t["scope"], t["data"], n))

    def _sub_process(self, t: Token, n: Node) -> None:
        t["wait"] = "child"
        self._arm(t, n)
        pid = self.state["scopes"][t["scope"]]["def"]
        self._open_scope(t, n.id, pid, "subProcess", copy.deepcopy(t["data"]))

    def _call_activity(self, t: Token, n: Node) -> None:
        t["wait"] = "child"
        self._arm(t, n)
        self._call(t, n)

    def _pass(self, t: Token) -> None:
        self._at = t["node"]
        n = self._node(t)
        self._done(n)
        self._leave(t, n)

    def _leave(self, t: Token, n: Node) -> None:
        if n.data is not None and bpmn_data.leave(self, t, n):
            return  # an inner instance of a loop reported to its loop
        self._disarm(t)
        d = self._definition(t["scope"])
        flows = [d.flows[f] for f in n.outgoing]
        if not flows:
            self._consume(t)
            return
        taken: list[str] = []
        for f in flows:
            if f.id == n.default:
                continue
            if f.condition is None or self._test(n, f.condition, t["data"]):
                taken.append(f.id)
        if not taken and n.default is not None:
            taken = [n.default]
        if not taken:
            self._fail(n.id, f"no outgoing flow of {n.id} can be taken")
        self._move(t, taken)

    def _test(self, n: Node, condition: Any, data: Mapping[str, Any]) -> bool:
        try:
            return bool(condition.test(bpmn_data.condition_view(self, data)))
        except FlowlaneError as exc:
            self._fail(n.id, f"condition failed: {exc}")
            return False

    def _move(self, t: Token, flows: list[str]) -> None:
        """Send ``t`` along ``flows`` (copies of its data on the extra ones)."""
        self._disarm(t)
        if not flows:
            self._consume(t)
            return
        d = self._definition(t["scope"])
        data = t["data"]
        del self.state["tokens"][t["id"]]
        for f in flows:
            self._token(d.flows[f].target, t["scope"], f, copy.deepcopy(data))

    def _consume(self, t: Token) -> None:
        self._disarm(t)
        self.state["tokens"].pop(t["id"], None)
        scope = self.state["scopes"].get(t["scope"])
        if scope is None:
            return
        if scope["out"] is None:
            scope["out"] = copy.deepcopy(t["data"])
        else:
            deep_merge(scope["out"], t["data"])
        self._check_scope(t["scope"])

    # ---- gateways -------------------------------------------------------------------------

    def _exclusive(self, t: Token, n: Node) -> None:
        d = self._definition(t["scope"])
        for fid in n.outgoing:
            if fid == n.default:
                continue
            f = d.flows[fid]
            if f.condition is None or self._test(n, f.condition, t["data"]):
                self._done(n)
                self._move(t, [fid])
                return
        if n.default is not None:
            self._done(n)
            self._move(t, [n.default])
            return
        if not n.outgoing:
            self._done(n)
            self._consume(t)
            return
        self._fail(n.id, f"exclusive gateway {n.id}: no condition is true and there is no default")

    def _inclusive_flows(self, scope: str, data: Mapping[str, Any], n: Node) -> list[str]:
        d = self._definition(scope)
        taken = [
            fid
            for fid in n.outgoing
            if fid != n.default
            and (d.flows[fid].condition is None or self._test(n, d.flows[fid].condition, data))
        ]
        if not taken and n.default is not None:
            taken = [n.default]
        if not taken and n.outgoing:
            self._fail(
                n.id, f"inclusive gateway {n.id}: no condition is true and there is no default"
            )
        return taken

    def _join_waiting(self, t: Token) -> list[Token]:
        return [
            x
            for x in self._tokens()
            if x["wait"] == "join" and x["node"] == t["node"] and x["scope"] == t["scope"]
        ]

    def _merge(self, tokens: list[Token]) -> dict[str, Any]:
        merged: dict[str, Any] = copy.deepcopy(tokens[0]["data"])
        for x in tokens[1:]:
            deep_merge(merged, x["data"])
        return merged

    def _parallel_join(self, t: Token, n: Node) -> None:
        waiting = self._join_waiting(t)
        first: dict[str, Token] = {}
        for x in waiting:
            first.setdefault(x["flow"], x)
        if not all(f in first for f in n.incoming):
            return
        self._fire_join(n, [first[f] for f in n.incoming], parallel=True)

    def _fire_join(self, n: Node, arrived: list[Token], *, parallel: bool) -> None:
        arrived = sorted(arrived, key=lambda x: x["n"])
        data = self._merge(arrived)
        scope = arrived[0]["scope"]
        for x in arrived:
            del self.state["tokens"][x["id"]]
        self._done(n)
        t = self._token(n.id, scope, None, data)
        flows = list(n.outgoing) if parallel else self._inclusive_flows(scope, data, n)
        self._move(t, flows)

    def _fire_inclusive_join(self) -> bool:
        groups: dict[tuple[str, str], list[Token]] = {}
        for x in self._tokens():
            at = self._node(x)
            if x["wait"] == "join" and (at.kind == "inclusiveGateway" or at.reachable_join):
                groups.setdefault((x["scope"], x["node"]), []).append(x)
        for (scope, node), waiting in groups.items():
            d = self._definition(scope)
            n = d.nodes[node]
            have = {x["flow"] for x in waiting}
            empty = [f for f in n.incoming if f not in have]
            others = [
                x
                for x in self._tokens()
                if x["scope"] == scope and not (x["wait"] == "join" and x["node"] == node)
            ]
            # BPMN 13.3.2: a token that can reach an empty incoming flow blocks the join
            # unless it can also reach an incoming flow that already holds a token
            blocked = False
            for x in others:
                reachable = self._reachable_flows(d, x["node"], node)
                if any(f in reachable for f in empty) and not (reachable & have):
                    blocked = True
                    break
            if blocked:
                continue
            first: dict[str, Token] = {}
            for x in waiting:
                first.setdefault(x["flow"], x)
            parallel = n.kind == "parallelGateway"
            self._fire_join(n, list(first.values()), parallel=parallel)
            return True
        return False

    @staticmethod
    def _reachable_flows(d: BpmnDefinition, start: str, stop: str) -> set[str]:
        seen_nodes = {start}
        flows: set[str] = set()
        stack = [start]
        while stack:
            nid = stack.pop()
            node = d.nodes[nid]
            outs = list(node.outgoing)
            for b in node.boundaries:
                outs.extend(d.nodes[b].outgoing)
            for fid in outs:
                flows.add(fid)
                target = d.flows[fid].target
                if target != stop and target not in seen_nodes:
                    seen_nodes.add(target)
                    stack.append(target)
        return flows

    # ---- scopes ---------------------------------------------------------------------------

    def _open_scope(
        self, parent: Token | None, element: str, pid: str, kind: str, data: dict[str, Any]
    ) -> None:
        sid, _ = self._new_id("s")
        self.state["scopes"][sid] = {
            "id": sid,
            "element": element,
            "def": pid,
            "kind": kind,
            "parent": parent["scope"] if parent else None,
            "token": parent["id"] if parent else None,
            "out": None,
        }
        if parent is not None:
            parent["child"] = sid
        d = self.program.definitions[pid]
        starts = d.scopes[element].starts
        bpmn_events.arm_scope(self, sid)
        for node in starts:
            self._token(node, sid, None, copy.deepcopy(data))
        if not starts:
            self.state["scopes"][sid]["out"] = copy.deepcopy(data)
            self._check_scope(sid)

    def _call(self, t: Token, n: Node) -> None:
        assert n.called is not None
        if n.called not in self.program.definitions:
            problems = "; ".join(str(p) for p in self.program.unavailable.get(n.called, ()))
            self._fail(n.id, f"the called process {n.called} cannot run: {problems}")
        callee = self.program.definitions[n.called]
        if callee.inputs is None:
            data = copy.deepcopy(t["data"])
        else:
            data = {}
            for name in callee.inputs:
                if name not in t["data"]:
                    self._fail(n.id, f"missing input {name!r} for {n.called}")
                data[name] = copy.deepcopy(t["data"][name])
        self._open_scope(t, n.called, n.called, "call", data)

    def _check_scope(self, sid: str) -> None:
        if sid not in self.state["scopes"]:
            return
        if any(
            t["scope"] == sid and not bpmn_events.is_listener(t)
            for t in self.state["tokens"].values()
        ):
            return
        if any(s["parent"] == sid for s in self.state["scopes"].values()):
            return
        self._close_scope(sid)

    def _close_scope(self, sid: str) -> None:
        scope = self.state["scopes"].pop(sid)
        bpmn_events.drop_scope(self, sid)
        out = scope["out"]
        if scope["token"] is None:
            self.state["data"] = out if out is not None else {}
            self.state["status"] = "completed"
            return
        pt = self.state["tokens"].get(scope["token"])
        if pt is None:
            return
        pt.pop("child", None)
        if out is not None:
            if scope["kind"] == "call":
                callee = self.program.definitions[scope["def"]]
                if callee.outputs is None:
                    pt["data"] = out
                else:
                    for name in callee.outputs:
                        if name not in out:
                            self._fail(pt["node"], f"missing output {name!r} of {scope['def']}")
                        pt["data"][name] = out[name]
            else:
                pt["data"] = out
        pt["wait"] = None
        pt["resume"] = True

    def _subtree(self, sid: str) -> list[str]:
        found = [sid]
        for s in list(self.state["scopes"].values()):
            if s["parent"] == sid:
                found.extend(self._subtree(s["id"]))
        return found

    def _cancel_scope(self, sid: str) -> None:
        for s in self._subtree(sid):
            for t in list(self.state["tokens"].values()):
                if t["scope"] == s:
                    self.state["tokens"].pop(t["id"], None)
            if s != sid:
                self.state["scopes"].pop(s, None)

    def _end_scope(self, sid: str, data: dict[str, Any]) -> None:
        """Terminate: cancel everything in the scope, then complete it with ``data``."""
        data = copy.deepcopy(data)
        self._cancel_scope(sid)
        self.state["scopes"][sid]["out"] = data
        self._close_scope(sid)

    def _cancel_token(self, t: Token) -> None:
        self._disarm(t)
        self.state["tokens"].pop(t["id"], None)
        child = t.get("child")
        if child is not None and child in self.state["scopes"]:
            self._cancel_scope(child)
            self.state["scopes"].pop(child, None)

    # ---- events ---------------------------------------------------------------------------

    def _due(self, n: Node, data: Mapping[str, Any]) -> float:
        assert n.timer is not None
        timer = n.timer
        try:
            value = (
                timer.expression.evaluate(data) if timer.expression is not None else timer.literal
            )
            if value is None and timer.expression is not None:
                value = timer.expression.source
            due = iso_timer_value(value, timer.kind, self.now)
        except FlowlaneError as exc:
            self._fail(n.id, f"timer: {exc}")
        return _epoch(due)

    def _wait_for(self, t: Token, n: Node) -> None:
        t["wait"] = n.trigger
        t["name"] = n.event_name
        if n.trigger == "timer":
            t["due"] = self._due(n, t["data"])

    def _arm(self, t: Token, n: Node) -> None:
        if "inner" in t:
            return  # the boundaries belong to the looping activity, armed once
        d = self._definition(t["scope"])
        for b in n.boundaries:
            bn = d.nodes[b]
            extra: dict[str, Any] = {"owner": t["id"], "wait": bn.trigger, "name": bn.event_name}
            if bn.trigger == "timer":
                extra["due"] = self._due(bn, t["data"])
            self._token(b, t["scope"], None, {}, **extra)

    def _disarm(self, t: Token) -> None:
        for x in list(self.state["tokens"].values()):
            if x.get("owner") == t["id"]:
                del self.state["tokens"][x["id"]]

    def _trigger(self, t: Token, payload: Mapping[str, Any] | None) -> None:
        self._at = t["node"]
        if bpmn_events.intercept(self, t, payload):
            return
        owner_id = t.get("owner")
        if owner_id is None:
            if payload:
                t["data"].update(copy.deepcopy(dict(payload)))
            t["wait"] = None
            t["resume"] = True
            return
        owner = self.state["tokens"][owner_id]
        n = self._node(t)
        data = copy.deepcopy(owner["data"])
        if payload:
            data.update(copy.deepcopy(dict(payload)))
        if n.interrupting:
            del self.state["tokens"][t["id"]]
            self._cancel_token(owner)
            self._token(n.id, t["scope"], None, data, resume=True)
        else:
            if n.trigger == "timer":
                del self.state["tokens"][t["id"]]
            self._token(n.id, t["scope"], None, data, resume=True)

    def tokens(self) -> Iterator[Token]:
        """The live tokens (copies), for diagnostics."""
        for t in self._tokens():
            yield copy.deepcopy(t)


_HANDLERS: dict[str, Any] = {
    "endEvent": BpmnRun._end,
    "startEvent": BpmnRun._pass_node,
    "intermediateThrowEvent": BpmnRun._pass_node,
    "serviceTask": BpmnRun._pass_node,
    "task": BpmnRun._pass_node,
    "scriptTask": BpmnRun._script,
    "exclusiveGateway": BpmnRun._exclusive,
    "parallelGateway": BpmnRun._parallel,
    "inclusiveGateway": BpmnRun._inclusive,
    "subProcess": BpmnRun._sub_process,
    "callActivity": BpmnRun._call_activity,
    "intermediateCatchEvent": BpmnRun._wait_for,
    "boundaryEvent": BpmnRun._pass_node,
}
"""What a token does on arriving at a node of each kind (wait-state tasks aside)."""
_HANDLERS.update(bpmn_events.HANDLERS)
_HANDLERS.update(bpmn_data.HANDLERS)
