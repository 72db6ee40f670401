"""Compiling BPMN events beyond stage 1 (ADR 0012, stages 2 and 4).

Called from :mod:`flowlane.model.bpmn_compile` through small hooks, this module compiles:

* **throws** — error, escalation, cancel, signal and message end events and intermediate
  throw events, send tasks: each a :class:`Throw` (kind, the error / escalation code or the
  message / signal name, the payload expression and the variable the catcher stores it in:
  ``spiffworkflow:payloadExpression`` / ``variableName`` on the error, escalation or signal,
  ``camunda:expression`` / ``camunda:resultVariable`` on a message definition);
* **catches** with more than the stage-1 single timer / message / signal definition: error,
  escalation and cancel boundaries (``trigger`` = the kind, ``event_name`` = the code, None
  = catch-all), conditional catches and boundaries, timer cycles, and multiple /
  parallel-multiple catches and starts (:class:`Trigger` list, ``parallel``);
* **event sub-processes** (node kind ``eventSubProcess`` with their own scope whose start is
  their triggered start event), **transactions** (a sub-process scope), **event-based
  gateways**;
* **collaborations**: a program whose main id names a collaboration runs one synthetic
  definition whose nodes are the participants (call activities of their processes).

The interpreter side is :mod:`flowlane.engine.bpmn_events`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from flowlane.core.duration import parse_duration
from flowlane.core.errors import DurationError
from flowlane.expr.compiler import Expression as SafeExpression
from flowlane.model.bpmn_graph import (
    BpmnGraph,
    BpmnSet,
    Collaboration,
    EventDefinition,
    FlowNode,
    RootElement,
    Scope,
)

if TYPE_CHECKING:  # pragma: no cover
    from flowlane.model.bpmn_compile import BpmnDefinition, Node, Timer, _Compiler

SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
THROW_KINDS = frozenset({"error", "escalation", "cancel", "signal", "message"})
CATCH_KINDS = frozenset(
    {"error", "escalation", "cancel", "signal", "message", "timer", "conditional"}
)
_CYCLE = re.compile(r"^R(\d*)/(?:([^/]+)/)?(P[^/]+)$")


@dataclass(frozen=True)
class Throw:
    kind: str
    """``error``, ``escalation``, ``cancel``, ``signal`` or ``message``."""
    name: str | None
    """The error / escalation code or the signal / message name (None: no ref)."""
    payload: SafeExpression | None = None
    variable: str | None = None


@dataclass(frozen=True)
class Trigger:
    kind: str
    name: str | None = None
    condition: SafeExpression | None = None
    timer: Timer | None = None
    cycle: tuple[int | None, float] | None = None
    """A timer cycle: (repetitions or None for unbounded, period in seconds)."""


@dataclass(frozen=True)
class EventSpec:
    throws: tuple[Throw, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    parallel: bool = False
    """A parallel-multiple catch: every trigger is needed."""
    cycle: tuple[int | None, float] | None = None


def parse_cycle(text: str) -> tuple[int | None, float] | None:
    """``R3/PT10H`` → (3, 36000.0); ``R/PT1M`` → (None, 60.0); a start date is ignored."""
    m = _CYCLE.match(text.strip())
    if m is None:
        return None
    try:
        period = parse_duration(m.group(3)).total_seconds()
    except DurationError:
        return None
    return (int(m.group(1)) if m.group(1) else None), period


def _ext(nodes: tuple[object, ...], local: str) -> str | None:
    from flowlane.model.bpmn_graph import XmlNode

    for x in nodes:
        if isinstance(x, XmlNode):
            for n in x.walk():
                if n.local == local and (n.text or "").strip():
                    return (n.text or "").strip()
    return None


def _attr(d: EventDefinition, local: str) -> str | None:
    for k, v in d.attrs:
        if k.rpartition("}")[2] == local and k.startswith("{"):
            return v
    return None


class EventCompiler:
    """The event part of one process's compilation (a view on the stage-1 compiler)."""

    def __init__(self, compiler: _Compiler, graph: BpmnGraph) -> None:
        self.c = compiler
        self.roots = {r.id: r for r in graph.definitions.roots if r.id}

    def root(self, ref: str | None) -> RootElement | None:
        return self.roots.get(ref or "")

    def name_of(self, n: FlowNode, d: EventDefinition) -> str | None:
        r = self.root(d.ref)
        if d.kind in ("error", "escalation"):
            if r is None:
                return None
            return r.code or r.name or r.id
        if d.kind in ("message", "signal"):
            return (r.name or r.id) if r is not None else (n.name or d.ref)
        return None

    def throw(self, n: FlowNode, d: EventDefinition) -> Throw | None:
        if d.kind not in THROW_KINDS:
            self.c.bad(n.id, n.label, f"{d.kind} throw events are not supported yet")
            return None
        name = self.name_of(n, d)
        r = self.root(d.ref)
        payload_text = variable = None
        if r is not None:
            payload_text = _ext(r.extensions, "payloadExpression")
            variable = _ext(r.extensions, "variableName")
        if d.kind == "message":
            payload_text = _attr(d, "expression") or payload_text
            variable = _attr(d, "resultVariable") or variable
        payload = None
        if payload_text:
            payload = self.c.expression(payload_text, n.id, n.label, "payload")
        return Throw(d.kind, name, payload, variable)

    def throws(self, n: FlowNode, base: Node) -> Node:
        from flowlane.model.bpmn_compile import _with

        found = tuple(t for t in (self.throw(n, d) for d in n.event_definitions) if t)
        return _with(base, ev=EventSpec(throws=found))

    def trigger(self, n: FlowNode, d: EventDefinition) -> Trigger | None:
        if d.kind not in CATCH_KINDS:
            self.c.bad(n.id, n.label, f"{d.kind} catch events are not supported yet")
            return None
        if d.kind == "conditional":
            if d.condition is None or not d.condition.text.strip():
                self.c.bad(n.id, n.label, "a conditional event without a condition")
                return None
            language = self.c.language(d.condition)
            text = d.condition.text.strip()
            cond = self.c.expression(text, n.id, n.label, "condition", language)
            return Trigger("conditional", None, condition=cond) if cond else None
        if d.kind == "timer":
            if len(d.timers) != 1:
                self.c.bad(n.id, n.label, "a timer needs exactly one definition")
                return None
            t = d.timers[0]
            text = t.expression.text.strip()
            if t.kind == "cycle":
                cycle = parse_cycle(text)
                if cycle is None:
                    self.c.bad(n.id, n.label, f"timer cycle {text!r} is not R<n>/<duration>")
                    return None
                return Trigger("timer", None, cycle=cycle)
            timer = self.c.timer_of(t.kind, t.expression, n.id, n.label)
            return Trigger("timer", None, timer=timer) if timer else None
        return Trigger(d.kind, self.name_of(n, d))

    def catch(self, n: FlowNode, base: Node) -> Node:
        """Boundary / intermediate catch / start event with any supported definitions."""
        from flowlane.model.bpmn_compile import _with

        found = tuple(t for t in (self.trigger(n, d) for d in n.event_definitions) if t)
        if not found:
            return base
        spec = EventSpec(triggers=found, parallel=n.parallel_multiple)
        first = found[0]
        node = _with(base, ev=spec, trigger=first.kind, event_name=first.name)
        if first.timer is not None:
            node = _with(node, timer=first.timer)
        if first.cycle is not None:
            from flowlane.model.bpmn_compile import Timer

            seconds = first.cycle[1]
            node = _with(node, timer=Timer("duration", None, literal=f"PT{seconds}S"))
            node = _with(node, ev=replace(spec, cycle=first.cycle))
        if n.kind == "boundaryEvent" and first.kind == "cancel":
            node = _with(node, interrupting=True)
        return node


def is_collaboration(bpmn: BpmnSet, cid: str) -> tuple[BpmnGraph, Collaboration] | None:
    if bpmn.callee(cid) is not None:
        return None
    for g in bpmn.graphs:
        for c in g.definitions.collaborations:
            if c.id == cid:
                return g, c
    return None


def participants(bpmn: BpmnSet, collab: Collaboration) -> list[tuple[str, str, str | None]]:
    """(participant id, process id, name) of the participants that run: executable ones,
    and non-executable ones that start by a message (they run when one arrives)."""
    out: list[tuple[str, str, str | None]] = []
    for p in collab.participants:
        if p.process_ref is None:
            continue
        found = bpmn.callee(p.process_ref)
        if found is None:
            continue
        _, process = found
        if process.is_executable is False and not any(
            n.kind == "startEvent" and any(d.kind == "message" for d in n.event_definitions)
            for n in process.body.nodes
        ):
            continue
        out.append((p.id, p.process_ref, p.name))
    return out


STAGE1_CATCHES = frozenset({"timer", "message", "signal"})


def wants_catch(n: FlowNode) -> bool:
    """Whether a catch / boundary event needs this module (not the stage-1 single timer /
    message / signal definition)."""
    defs = n.event_definitions
    if len(defs) != 1 or defs[0].kind not in STAGE1_CATCHES:
        return True
    return any(t.kind == "cycle" for t in defs[0].timers)


def activity(ec: EventCompiler, n: FlowNode, base: Node) -> Node | None:
    """Activities and gateways of this stage: None when the kind is not one of them."""
    from flowlane.model.bpmn_compile import _with

    if n.kind == "subProcess" and n.triggered_by_event:
        return _with(base, kind="eventSubProcess")
    if n.kind == "transaction":
        return base
    if n.kind == "eventBasedGateway":
        return base
    if n.kind == "sendTask":
        if n.message_ref is None:
            return base
        d = EventDefinition("message", None, n.message_ref)
        t = ec.throw(n, d)
        return _with(base, ev=EventSpec(throws=(t,))) if t else base
    if n.kind == "receiveTask":
        d = EventDefinition("message", None, n.message_ref)
        name = ec.name_of(n, d)
        return _with(base, trigger="message", event_name=name, ev=EventSpec())
    return None


def starts(body: Scope, kind: str, found: list[str]) -> list[str]:
    """A scope's start nodes: an event sub-process starts at its triggered start event; any
    other scope at its none / implicit starts, else at its event starts (they wait)."""
    events = [
        n.id
        for n in body.nodes
        if n.kind == "startEvent" and n.event_definitions and not n.incoming
    ]
    if kind == "eventSubProcess":
        return events
    return found or events


def compile_collaboration(compiler: _Compiler, cid: str) -> bool:
    """Compile collaboration ``cid`` (its running participants and what they call) into a
    definition of one scope whose nodes are the participants. False: not a collaboration."""
    from flowlane.model.bpmn_compile import BpmnDefinition, Node, ScopeDef

    found = is_collaboration(compiler.set, cid)
    if found is None:
        return False
    graph, collab = found
    nodes: dict[str, Node] = {}
    for pid, process, name in participants(compiler.set, collab):
        nodes[pid] = Node(pid, "callActivity", name, cid, called=process)
    if not nodes:
        compiler.bad(cid, "collaboration", "no participant runs an executable process")
        return True
    scope = ScopeDef(cid, "collaboration", tuple(nodes))
    flows = tuple((f.source, f.target) for f in collab.message_flows if f.source and f.target)
    compiler.definitions[cid] = BpmnDefinition(
        cid, collab.name, graph.source, nodes, {}, {cid: scope}, message_flows=flows
    )
    for node in nodes.values():
        assert node.called is not None
        compiler.process(node.called)
    return True


def correlations(
    compiler: _Compiler, graph: BpmnGraph
) -> tuple[tuple[str, str, SafeExpression], ...]:
    """(message name, correlation property id, retrieval expression) of the file: how to read
    a correlation value from a message's payload (``correlationPropertyRetrievalExpression``)."""
    names = {r.id: r.name or r.id for r in graph.definitions.messages if r.id}
    found: list[tuple[str, str, SafeExpression]] = []
    for prop in graph.root.walk():
        if not prop.is_bpmn("correlationProperty"):
            continue
        pid = prop.get("id") or ""
        for ret in prop.bpmn("correlationPropertyRetrievalExpression"):
            path = ret.first("messagePath")
            message = names.get(ret.get("messageRef") or "")
            if path is None or message is None or not path.all_text().strip():
                continue
            text = path.all_text().strip()
            e = compiler.expression(text, pid, "correlationProperty", "retrieval expression")
            if e is not None:
                found.append((message, pid, e))
    return tuple(found)


def finish(compiler: _Compiler, graph: BpmnGraph, definition: BpmnDefinition) -> BpmnDefinition:
    """Add what this module knows about a compiled process (its message correlations)."""
    found = correlations(compiler, graph)
    return replace(definition, correlations=found) if found else definition
