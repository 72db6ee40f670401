"""Events and exceptions for the standard-BPMN interpreter (ADR 0012, stages 2 and 4).

Called from :class:`flowlane.engine.bpmn.BpmnRun` through small hooks (``HANDLERS``,
:func:`intercept` at the top of ``_trigger``, :func:`arm_scope` when a scope opens,
:func:`drop_scope` when it closes, :func:`fire_conditions` when a step has nothing ready,
:func:`deliver_message` / :func:`broadcast` for messages and signals). Pure and
deterministic like the rest of the run; every mark it leaves on a token is JSON.

* **Throws** (end events, intermediate throws, send tasks): *error*, *escalation* and
  *cancel* search outwards from the throwing scope — an event sub-process start listening in
  the scope, then a boundary on the activity holding the scope (through call activities
  too) — matching the code exactly, else a catch-all; an uncaught error stops the run in
  error at the throw, an uncaught escalation is recorded (``state["escalations"]``) and the
  run goes on. *Signals* reach every catch, boundary, start and event-sub-process start
  waiting for the name in the run; *messages* the first one waiting, else a collaboration
  participant whose process starts on that message (a new instance of it), else they leave
  the run (``state["outbox"]``). A payload (``payloadExpression`` / ``camunda:expression``)
  is stored by the catcher under the throw's variable, or merged when it is a dict.
* **Event starts**: a scope without a none start waits at its event starts; the first to
  fire wins and removes the others; a multiple start waits for any of its definitions, a
  parallel-multiple one for all.
* **Event sub-processes**: their start is armed (a *listener* token, not keeping its scope
  alive) while the enclosing scope runs; interrupting: everything else in the scope is
  cancelled; non-interrupting: the listener stays armed.
* **Event-based gateway**: arms the catches after it; the first to fire removes the others.
* **Conditional** catches and boundaries fire when their condition holds over the data of
  the scope (re-checked whenever a step has nothing else to do); **timer cycles** re-arm
  until their repetitions run out.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from flowlane.core.errors import FlowlaneError
from flowlane.engine import bpmn_data

if TYPE_CHECKING:  # pragma: no cover
    from flowlane.engine.bpmn import BpmnRun, Token
    from flowlane.model.bpmn_compile import Node
    from flowlane.model.bpmn_events import Throw

EXCEPTIONS = frozenset({"error", "escalation", "cancel"})
_OWN = frozenset({"id", "n", "node", "scope", "flow", "data"})


# ---- waiting ---------------------------------------------------------------------------------


def _triggers(n: Node) -> list[list[Any]]:
    if n.ev is not None and n.ev.triggers:
        return [[t.kind, t.name] for t in n.ev.triggers]
    return [[n.trigger, n.event_name]]


def accepts(t: Token, kind: str, name: str | None) -> bool:
    """Whether waiting token ``t`` takes a ``kind`` event called ``name``."""
    names = t.get("names")
    if names:
        return any(k == kind and v == name for k, v in names)
    return bool(t.get("wait") == kind and t.get("name") == name)


def wait_on(run: BpmnRun, t: Token, n: Node) -> None:
    """Make ``t`` wait at catch / start / receive node ``n``."""
    triggers = _triggers(n)
    kind, name = triggers[0]
    t["wait"] = kind
    t["name"] = name
    if len(triggers) > 1:
        t["names"] = triggers
        if n.ev is not None and n.ev.parallel:
            t["got"] = []
    if kind == "timer":
        t["due"] = run._due(n, t["data"])
        if n.ev is not None and n.ev.cycle is not None:
            t["cycle"] = list(n.ev.cycle)


def start_event(run: BpmnRun, t: Token, n: Node) -> None:
    if n.ev is None or not n.ev.triggers:
        run._pass(t)
        return
    wait_on(run, t, n)
    t["group"] = f"start:{t['scope']}"


def catch_event(run: BpmnRun, t: Token, n: Node) -> None:
    if n.ev is None:
        run._wait_for(t, n)
    else:
        wait_on(run, t, n)


def receive_task(run: BpmnRun, t: Token, n: Node) -> None:
    wait_on(run, t, n)
    run._arm(t, n)


def event_gateway(run: BpmnRun, t: Token, n: Node) -> None:
    run._done(n)
    run._disarm(t)
    d = run._definition(t["scope"])
    group = f"gateway:{t['id']}"
    del run.state["tokens"][t["id"]]
    for fid in n.outgoing:
        target = d.nodes[d.flows[fid].target]
        x = run._token(target.id, t["scope"], fid, copy.deepcopy(t["data"]), group=group)
        if target.kind == "receiveTask":
            wait_on(run, x, target)
        else:
            catch_event(run, x, target)


# ---- throwing --------------------------------------------------------------------------------


def _payload(run: BpmnRun, t: Token, n: Node, thr: Throw) -> dict[str, Any]:
    if thr.payload is None:
        return {}
    try:
        value = thr.payload.evaluate(t["data"])
    except FlowlaneError as exc:
        run._fail(n.id, f"payload: {exc}")
        return {}
    if thr.variable:
        return {thr.variable: copy.deepcopy(value)}
    return copy.deepcopy(value) if isinstance(value, dict) else {}


def _pick(cands: list[Token], code: str | None) -> Token | None:
    if code is not None:
        for x in cands:
            if x.get("name") == code:
                return x
    for x in cands:
        if x.get("name") is None:
            return x
    return None


def find_catch(run: BpmnRun, sid: str | None, kind: str, code: str | None) -> Token | None:
    """The catch of an error / escalation / cancel thrown in scope ``sid``, searching out."""
    while sid is not None and sid in run.state["scopes"]:
        scope = run.state["scopes"][sid]
        tokens = run._tokens()
        listeners = [x for x in tokens if x["scope"] == sid and x.get("listener")]
        found = _pick([x for x in listeners if x["wait"] == kind], code)
        if found is not None:
            return found
        holder = scope["token"]
        if holder is not None:
            bounds = [x for x in tokens if x.get("owner") == holder and x["wait"] == kind]
            found = _pick(bounds, code)
            if found is not None:
                return found
        sid = scope["parent"]
    return None


def throw(run: BpmnRun, t: Token, n: Node, thr: Throw) -> None:
    payload = _payload(run, t, n, thr)
    if thr.kind == "signal":
        broadcast(run, thr.name or "", payload)
        # for a host: signals reach other instances too (ADR 0012 "Hosting")
        run.state.setdefault("signals", []).append(
            {"signal": thr.name, "from": n.id, "payload": payload}
        )
        return
    if thr.kind == "message":
        if thr.payload is None and n.kind == "sendTask":
            payload = copy.deepcopy(t["data"])
        _remember(run, t, thr.name or "", {**t["data"], **payload})
        if not deliver_message(run, thr.name or "", payload):
            run.state.setdefault("outbox", []).append(
                {"message": thr.name, "from": n.id, "payload": payload}
            )
        return
    catch = find_catch(run, t["scope"], thr.kind, thr.name)
    if catch is not None:
        run._trigger(catch, payload)
        return
    if thr.kind == "escalation":
        run.state.setdefault("escalations", []).append({"code": thr.name, "at": n.id})
        return
    run._fail(n.id, f"uncaught {thr.kind} {thr.name or ''}".rstrip() + f" thrown at {n.id}")


def _throws(n: Node) -> tuple[Throw, ...]:
    return n.ev.throws if n.ev is not None else ()


def end_event(run: BpmnRun, t: Token, n: Node) -> None:
    throws = _throws(n)
    if not throws:
        run._end(t, n)
        return
    run._done(n)
    if not any(x.kind in EXCEPTIONS for x in throws):
        run.state["ended_at"].append(n.id)
    for thr in throws:
        throw(run, t, n, thr)
    if t["id"] in run.state["tokens"]:
        run._consume(t)


def throw_event(run: BpmnRun, t: Token, n: Node) -> None:
    throws = _throws(n)
    run._done(n)
    for thr in throws:
        throw(run, t, n, thr)
    if t["id"] in run.state["tokens"]:
        run._leave(t, n)


def send_task(run: BpmnRun, t: Token, n: Node) -> None:
    for thr in _throws(n):
        throw(run, t, n, thr)
    if t["id"] in run.state["tokens"]:
        run._pass(t)


# ---- delivery --------------------------------------------------------------------------------


def _fire(run: BpmnRun, t: Token, kind: str, name: str, payload: dict[str, Any]) -> None:
    t["last"] = [kind, name]
    run._trigger(t, payload)


def broadcast(run: BpmnRun, name: str, payload: dict[str, Any]) -> int:
    """A signal to every token waiting for it (catches, boundaries, starts, listeners)."""
    matches = [t for t in run._tokens() if accepts(t, "signal", name)]
    for t in matches:
        if t["id"] in run.state["tokens"]:
            _fire(run, t, "signal", name, payload)
    return len(matches)


def deliver_message(run: BpmnRun, name: str, payload: dict[str, Any]) -> bool:
    """A message to the first token waiting for it, else a new participant instance."""
    for t in run._tokens():
        if accepts(t, "message", name) and _correlates(run, t, name, payload):
            _fire(run, t, "message", name, payload)
            return True
    return _spawn_participant(run, name, payload)


def _process_scope(run: BpmnRun, sid: str) -> dict[str, Any]:
    scope = run.state["scopes"][sid]
    while scope["kind"] not in ("process", "call") and scope["parent"] is not None:
        scope = run.state["scopes"][scope["parent"]]
    return dict(scope)


def _values(run: BpmnRun, sid: str, name: str, data: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for message, prop, expr in run._definition(sid).correlations:
        if message != name:
            continue
        try:
            found[prop] = expr.evaluate(data)
        except FlowlaneError:
            continue
    return found


def _remember(run: BpmnRun, t: Token, name: str, data: dict[str, Any]) -> None:
    """A message leaves: its correlation values become the process instance's."""
    values = _values(run, t["scope"], name, data)
    if values:
        sid = _process_scope(run, t["scope"])["id"]
        run.state["scopes"][sid].setdefault("corr", {}).update(values)


def _correlates(run: BpmnRun, t: Token, name: str, payload: dict[str, Any]) -> bool:
    """Whether a message's correlation values agree with the waiting instance's."""
    values = _values(run, t["scope"], name, payload)
    if not values:
        return True
    known = _process_scope(run, t["scope"]).get("corr") or {}
    return all(known[k] == v for k, v in values.items() if k in known)


def _spawn_participant(run: BpmnRun, name: str, payload: dict[str, Any]) -> bool:
    roots = [s for s in run.state["scopes"].values() if s["token"] is None]
    for root in roots:
        d = run.program.definitions[root["def"]]
        scope_def = d.scopes.get(root["element"])
        if scope_def is None or scope_def.kind != "collaboration":
            continue
        for p in d.nodes.values():
            if p.called is None:
                continue
            callee = run.program.definitions[p.called]
            for start in callee.scopes[p.called].starts:
                sn = callee.nodes[start]
                if sn.ev is None or not any(k == "message" and v == name for k, v in _triggers(sn)):
                    continue
                holder = run._token(p.id, root["id"], None, {}, wait="child")
                run._call(holder, p)
                child = holder.get("child")
                for x in list(run.state["tokens"].values()):
                    if x["scope"] != child:
                        continue
                    if x["node"] == start:
                        x["data"].update(copy.deepcopy(payload))
                        x["resume"] = True
                    else:
                        run._cancel_token(x)
                return True
    return False


# ---- the trigger hook ------------------------------------------------------------------------


def intercept(run: BpmnRun, t: Token, payload: Any) -> bool:
    """Called first in ``_trigger``: True when this module handled the firing of ``t``."""
    last = t.pop("last", None)
    if "got" in t and last is not None:
        if last not in t["got"]:
            t["got"].append(last)
        t["data"].update(copy.deepcopy(dict(payload or {})))
        if any(x not in t["got"] for x in t["names"]):
            return True
        t.pop("got")
    cycle = t.get("cycle")
    if cycle is None and t.get("wait") == "timer":
        n = run._node(t)
        cycle = list(n.ev.cycle) if n.ev is not None and n.ev.cycle is not None else None
    # boundaries and event-sub-process starts re-arm; a catch or a start fires once (the
    # single instance waits for the first tick, bpmn-engine's rule)
    if cycle is not None and "owner" in t and (cycle[0] is None or cycle[0] > 1):
        extra = {k: copy.deepcopy(v) for k, v in t.items() if k not in _OWN}
        extra["due"] = t["due"] + cycle[1]
        extra["cycle"] = [None if cycle[0] is None else cycle[0] - 1, cycle[1]]
        run._token(t["node"], t["scope"], t.get("flow"), copy.deepcopy(t["data"]), **extra)
    group = t.get("group")
    if group is not None:
        for x in list(run.state["tokens"].values()):
            if x.get("group") == group and x["id"] != t["id"]:
                run._cancel_token(x)
    if t.get("listener"):
        _start_event_sub_process(run, t, payload)
        return True
    return False


def _scope_data(run: BpmnRun, sid: str) -> dict[str, Any]:
    from flowlane.engine.bpmn import deep_merge

    merged: dict[str, Any] = {}
    for x in run._tokens():
        if x["scope"] == sid and not x.get("listener") and "owner" not in x:
            deep_merge(merged, x["data"])
    return merged


def _start_event_sub_process(run: BpmnRun, t: Token, payload: Any) -> None:
    sid = t["scope"]
    d = run._definition(sid)
    start = d.nodes[t["node"]]
    esp = d.nodes[t["esp"]]
    data = _scope_data(run, sid)
    if payload:
        data.update(copy.deepcopy(dict(payload)))
    if start.interrupting:
        for x in run._tokens():
            if x["scope"] == sid and x["id"] in run.state["tokens"]:
                run._cancel_token(x)
        for s in list(run.state["scopes"].values()):
            if s["parent"] == sid and s["id"] in run.state["scopes"]:
                run._cancel_scope(s["id"])
                run.state["scopes"].pop(s["id"], None)
    elif start.trigger == "timer" and "cycle" not in t:
        run.state["tokens"].pop(t["id"], None)
    holder = run._token(esp.id, sid, None, copy.deepcopy(data), wait="child")
    run._open_scope(holder, esp.id, run.state["scopes"][sid]["def"], "subProcess", data)
    child = holder.get("child")
    for x in run.state["tokens"].values():
        if x["scope"] == child and x["node"] == start.id:
            x["resume"] = True


# ---- scopes ----------------------------------------------------------------------------------


def arm_scope(run: BpmnRun, sid: str) -> None:
    """Arm the starts of the event sub-processes of scope ``sid`` (just opened)."""
    scope = run.state["scopes"][sid]
    d = run.program.definitions[scope["def"]]
    for esp in d.nodes.values():
        if esp.kind != "eventSubProcess" or esp.scope != scope["element"]:
            continue
        inner = d.scopes.get(esp.id)
        if inner is None or not inner.starts:
            continue
        start = d.nodes[inner.starts[0]]
        x = run._token(start.id, sid, None, {}, listener=True, esp=esp.id, owner=sid)
        wait_on(run, x, start)


def is_listener(t: Token) -> bool:
    return bool(t.get("listener"))


def drop_scope(run: BpmnRun, sid: str) -> None:
    """A scope closed: its listeners go with it."""
    for x in list(run.state["tokens"].values()):
        if x["scope"] == sid:
            del run.state["tokens"][x["id"]]


def fire_conditions(run: BpmnRun) -> bool:
    """Fire the first conditional catch / boundary / start whose condition holds."""
    for t in run._tokens():
        if t.get("wait") != "conditional":
            continue
        n = run._node(t)
        if n.ev is None:
            continue
        data = _scope_data(run, t["scope"])
        owner = run.state["tokens"].get(t.get("owner") or "")
        if owner is not None:
            data.update(copy.deepcopy(owner["data"]))
        data.update(copy.deepcopy(t["data"]))
        view = bpmn_data.scope_view(run, t["scope"], data)
        for trig in n.ev.triggers:
            if trig.kind != "conditional" or trig.condition is None:
                continue
            try:
                holds = bool(trig.condition.test(view))
            except FlowlaneError:
                holds = False
            if holds:
                run._trigger(t, None)
                return True
    return False


def _sub_process(run: BpmnRun, t: Token, n: Node) -> None:
    run._sub_process(t, n)


HANDLERS: dict[str, Any] = {
    "endEvent": end_event,
    "intermediateThrowEvent": throw_event,
    "startEvent": start_event,
    "intermediateCatchEvent": catch_event,
    "eventBasedGateway": event_gateway,
    "sendTask": send_task,
    "receiveTask": receive_task,
    "transaction": _sub_process,
}
"""Handlers of this module's node kinds (merged into the interpreter's table)."""


def activity_error(run: BpmnRun, t: Token, n: Node) -> bool:
    """An activity failed with an error that has no code (a script's exception): an error
    boundary on it catches it (a catch-all first, else one with a code, bpmn-engine's rule)."""
    d = run._definition(t["scope"])
    bounds = [d.nodes[b] for b in n.boundaries if d.nodes[b].trigger == "error"]
    bounds.sort(key=lambda b: b.event_name is not None)
    if not bounds:
        return False
    b = bounds[0]
    data = copy.deepcopy(t["data"])
    run._cancel_token(t)
    run._token(b.id, t["scope"], None, data, resume=True)
    return True


def done(run: BpmnRun, n: Node) -> None:
    """A node completed: a collaboration's message flow from a node that throws nothing by
    itself (a plain task) delivers to the flow's target node (bpmn-engine's rule)."""
    if _throws(n) or n.kind in ("endEvent", "intermediateThrowEvent"):
        return
    flows = run.program.entry.message_flows
    if not flows:
        return
    for source, target in flows:
        if source != n.id:
            continue
        for x in run._tokens():
            if x["node"] == target and x.get("wait") not in (None, "task", "join", "child"):
                x["last"] = [x.get("wait"), x.get("name")]
                run._trigger(x, None)
                break
