"""Compile parsed standard BPMN (:mod:`flowlane.model.bpmn_graph`) into executable
definitions (ADR 0012, stage 1).

:func:`compile_bpmn` takes a :class:`~flowlane.model.bpmn_graph.BpmnSet` (files loaded
together) and the id of the process to run, and returns a :class:`BpmnProgram`: that
process and every process it calls (``calledElement`` resolved across the files), each a
:class:`BpmnDefinition` with its nodes and sequence flows by id, conditions compiled into
flowlane's safe expressions, defaults on gateways and activities, and its scopes (the
process and each embedded sub-process) with their start nodes.

Anything the interpreter (:mod:`flowlane.engine.bpmn`) cannot run yet is an import error,
:class:`BpmnImportError`, listing **every** unsupported element by id and kind with the
reason; nothing is silently dropped. Expressions in an unknown language are errors too.

Options (:class:`CompileOptions`) record source-engine conventions: ``task_mode``
(``wait``: a plain ``bpmn:task`` is a wait state, SpiffWorkflow; ``pass``: it completes by
itself, bpmn-engine) and ``choice_convention`` (Spiff's test parser: an unconditioned
outgoing flow of an exclusive gateway means ``choice == '<flow name>'``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flowlane.core.duration import parse_duration
from flowlane.core.errors import DurationError, ExpressionError, ValidationError
from flowlane.expr.compiler import Expression as SafeExpression
from flowlane.expr.js import (
    JS_LANGUAGES,
    PLACEHOLDER_LANGUAGES,
    JsScript,
    compile_js_expression,
    compile_js_script,
    compile_placeholder,
    has_placeholder,
)
from flowlane.expr.script import (
    Script,
    compile_python_expression,
    compile_script,
    expression_problem,
)
from flowlane.model import bpmn_data
from flowlane.model import bpmn_events as ev
from flowlane.model.bpmn_graph import (
    BpmnGraph,
    BpmnSet,
    Definitions,
    EventDefinition,
    FlowNode,
    Process,
    Scope,
)
from flowlane.model.bpmn_graph import Expression as XmlExpression
from flowlane.model.dmn import Decision

PYTHON_LANGUAGES = frozenset({"python", "text/x-python", "py", "flowlane"})
WAIT_TASKS = frozenset({"userTask", "manualTask"})
PASS_TASKS = frozenset({"serviceTask", "scriptTask"})
GATEWAYS = frozenset({"exclusiveGateway", "parallelGateway", "inclusiveGateway"})
BOUNDARY_KINDS = frozenset({"timer", "message", "signal"})
CATCH_KINDS = frozenset({"timer", "message", "signal"})


@dataclass(frozen=True)
class CompileOptions:
    task_mode: str = "wait"
    """``wait`` (Spiff: ``bpmn:task`` waits) or ``pass`` (bpmn-engine: it completes)."""
    choice_convention: bool = False
    expressions: str = "python"
    """The language of expressions and scripts that name none."""
    parallel_join: str = "strict"
    """``strict`` (BPMN: a parallel join waits for a token on every incoming flow) or
    ``reachable`` (Spiff: it fires once no other token of its scope can still reach an
    incoming flow that holds none, the rule of the inclusive join)."""

    def __post_init__(self) -> None:
        if self.task_mode not in ("wait", "pass"):
            raise ValidationError(f"task_mode must be wait or pass, not {self.task_mode!r}")
        if self.parallel_join not in ("strict", "reachable"):
            raise ValidationError(
                f"parallel_join must be strict or reachable, not {self.parallel_join!r}"
            )


@dataclass(frozen=True)
class Unsupported:
    element: str
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.element} ({self.kind}): {self.reason}"


class BpmnImportError(ValidationError):
    """The diagram uses elements the engine cannot run (yet); ``problems`` lists them all."""

    code = "bpmn_unsupported"

    def __init__(self, problems: list[Unsupported]) -> None:
        self.problems = tuple(problems)
        lines = "; ".join(str(p) for p in problems)
        super().__init__(f"cannot run this BPMN: {lines}", problems=[str(p) for p in problems])


@dataclass(frozen=True)
class Timer:
    """A timer: ``expression`` evaluates to ISO text (or a literal ISO text was given)."""

    kind: str
    """``duration`` or ``date``."""
    expression: SafeExpression | None
    literal: str | None = None


@dataclass(frozen=True)
class Flow:
    id: str
    source: str
    target: str
    name: str | None = None
    condition: SafeExpression | None = None
    condition_text: str | None = None


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    name: str | None
    scope: str
    """The id of the scope element holding it (the process or a sub-process)."""
    incoming: tuple[str, ...] = ()
    outgoing: tuple[str, ...] = ()
    default: str | None = None
    wait: bool = False
    """A task that waits for the host (``ready()``)."""
    terminate: bool = False
    script: Script | JsScript | None = None
    called: str | None = None
    """The process id a call activity runs."""
    trigger: str | None = None
    """``timer`` / ``message`` / ``signal`` for catch and boundary events."""
    event_name: str | None = None
    """The message or signal name matched (the message's name, else the event's)."""
    timer: Timer | None = None
    attached_to: str | None = None
    interrupting: bool = True
    boundaries: tuple[str, ...] = ()
    ev: ev.EventSpec | None = None
    """Throws, multiple triggers, conditions, cycles (:mod:`flowlane.model.bpmn_events`)."""
    data: bpmn_data.DataSpec | None = None
    """Loops, ioSpecification, data objects, decision (:mod:`flowlane.model.bpmn_data`)."""
    reachable_join: bool = False
    """A parallel join under ``parallel_join: reachable`` (:class:`CompileOptions`)."""

    @property
    def is_activity(self) -> bool:
        return self.kind in ACTIVITIES


ACTIVITIES = frozenset(
    {
        "task",
        "userTask",
        "manualTask",
        "serviceTask",
        "scriptTask",
        "subProcess",
        "callActivity",
        "receiveTask",
        "sendTask",
        "transaction",
        "businessRuleTask",
    }
)


@dataclass(frozen=True)
class ScopeDef:
    id: str
    kind: str
    """``process`` or ``subProcess``."""
    starts: tuple[str, ...]
    """The none start events, and every node without incoming flow (implicit start)."""


@dataclass(frozen=True)
class BpmnDefinition:
    id: str
    name: str | None
    source: str
    nodes: Mapping[str, Node]
    flows: Mapping[str, Flow]
    scopes: Mapping[str, ScopeDef]
    inputs: tuple[str, ...] | None = None
    """Process ``ioSpecification`` dataInput ids (a call passes only these), else None."""
    outputs: tuple[str, ...] | None = None
    message_flows: tuple[tuple[str, str], ...] = ()
    """A collaboration's message flows (source node, target node)."""
    correlations: tuple[tuple[str, str, SafeExpression], ...] = ()
    """(message name, correlation property, retrieval expression over the payload)."""

    def named(self, name: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.name == name]


@dataclass(frozen=True)
class BpmnProgram:
    main: str
    definitions: Mapping[str, BpmnDefinition]
    options: CompileOptions = field(default_factory=CompileOptions)
    unavailable: Mapping[str, tuple[Unsupported, ...]] = field(default_factory=dict)
    """Called processes that cannot run, with their problems: calling one is an error at
    the call activity, so a broken process a run never calls does not block it."""

    @property
    def entry(self) -> BpmnDefinition:
        return self.definitions[self.main]


def iso_timer_value(value: object, kind: str, now: datetime) -> datetime:
    """The due time of a timer whose definition evaluated to ``value`` (ISO text)."""
    if isinstance(value, timedelta):
        return now + value
    if isinstance(value, datetime):
        return value if value.tzinfo or now.tzinfo is None else value.replace(tzinfo=now.tzinfo)
    if not isinstance(value, str):
        raise ValidationError(f"a timer needs ISO 8601 text, not {value!r}")
    if kind == "duration":
        try:
            return now + parse_duration(value)
        except DurationError as exc:
            raise ValidationError(str(exc)) from None
    try:
        due = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"not an ISO 8601 date: {value!r}") from None
    if due.tzinfo is None and now.tzinfo is not None:
        due = due.replace(tzinfo=now.tzinfo)
    return due


class _Compiler:
    def __init__(
        self,
        bpmn: BpmnSet,
        options: CompileOptions,
        decisions: Mapping[str, Decision] | None = None,
    ) -> None:
        self.set = bpmn
        self.options = options
        self.problems: list[Unsupported] = []
        self.definitions: dict[str, BpmnDefinition] = {}
        self.unavailable: dict[str, tuple[Unsupported, ...]] = {}
        self.decisions: Mapping[str, Decision] = decisions or {}
        self.data_map: bpmn_data.DataMap | None = None

    def bad(self, element: str, kind: str, reason: str) -> None:
        self.problems.append(Unsupported(element, kind, reason))

    def language(self, expr: XmlExpression) -> str | None:
        """The adapter for an expression: ``python``, ``javascript``, ``placeholder``, None."""
        return expression_family(expr.language, self.options.expressions)

    def language_ok(self, expr: XmlExpression, element: str, kind: str, what: str) -> bool:
        if self.language(expr) is None:
            self.bad(element, kind, f"{what} in language {expr.language!r} (no adapter)")
            return False
        return True

    def expression(
        self, text: str, element: str, kind: str, what: str, language: str | None = "python"
    ) -> SafeExpression | None:
        try:
            if language == "javascript":
                return compile_js_expression(text)
            if language == "placeholder":
                if has_placeholder(text):
                    return compile_placeholder(text)
                return compile_js_expression(text)
            return compile_python_expression(text)
        except (ExpressionError, RecursionError, MemoryError) as exc:
            self.bad(element, kind, f"{what} {text.strip()!r}: {expression_problem(exc)}")
            return None

    def program(self, main: str) -> BpmnProgram:
        if not ev.compile_collaboration(self, main):
            self.process(main)
        if self.problems:
            raise BpmnImportError(self.problems)
        return BpmnProgram(main, dict(self.definitions), self.options, dict(self.unavailable))

    def process(self, pid: str) -> None:
        if pid in self.definitions:
            return
        found = self.set.callee(pid)
        if found is None:
            self.bad(pid, "process", "no loaded file defines this process")
            return
        graph, process = found
        self.ev = ev.EventCompiler(self, graph)
        nodes: dict[str, Node] = {}
        flows: dict[str, Flow] = {}
        scopes: dict[str, ScopeDef] = {}
        calls: list[str] = []
        messages = _names(graph.definitions, "message")
        signals = _names(graph.definitions, "signal")
        # placeholder against recursion (a process calling itself)
        self.definitions[pid] = BpmnDefinition(pid, process.name, graph.source, {}, {}, {})
        self.scope(process.body, pid, "process", nodes, flows, scopes, calls, messages, signals)
        inputs = outputs = None
        if process.io is not None:
            inputs = tuple(i for i, _ in process.io.inputs)
            outputs = tuple(i for i, _ in process.io.outputs)
        self.definitions[pid] = ev.finish(
            self,
            graph,
            BpmnDefinition(pid, process.name, graph.source, nodes, flows, scopes, inputs, outputs),
        )
        for callee in calls:
            self.callee(callee)

    def callee(self, pid: str) -> None:
        """Compile a called process; its problems make it *unavailable* (an error when a run
        reaches the call) instead of failing the import of the caller."""
        if pid in self.definitions or pid in self.unavailable:
            return
        outer, self.problems = self.problems, []
        try:
            self.process(pid)
        finally:
            problems, self.problems = self.problems, outer
        if problems:
            self.unavailable[pid] = tuple(problems)
            self.definitions.pop(pid, None)

    def scope(
        self,
        body: Scope,
        sid: str,
        kind: str,
        nodes: dict[str, Node],
        flows: dict[str, Flow],
        scopes: dict[str, ScopeDef],
        calls: list[str],
        messages: dict[str, str],
        signals: dict[str, str],
    ) -> None:
        by_id = {n.id: n for n in body.nodes}
        incoming: dict[str, list[str]] = {n.id: [] for n in body.nodes}
        outgoing: dict[str, list[str]] = {n.id: [] for n in body.nodes}
        for f in body.flows:
            if f.source is None or f.target is None:
                self.bad(f.id, "sequenceFlow", "missing sourceRef or targetRef")
                continue
            if f.source not in by_id or f.target not in by_id:
                self.bad(f.id, "sequenceFlow", "source or target is not in the same scope")
                continue
            outgoing[f.source].append(f.id)
            incoming[f.target].append(f.id)
            flows[f.id] = self.flow(f, by_id[f.source])
        boundaries: dict[str, list[str]] = {}
        for n in body.nodes:
            if n.kind == "boundaryEvent" and n.attached_to is not None:
                boundaries.setdefault(n.attached_to, []).append(n.id)
        starts: list[str] = []
        for n in body.nodes:
            node = self.node(n, sid, messages, signals)
            if node is None:
                continue
            node = _with(
                node,
                incoming=tuple(incoming[n.id]),
                outgoing=tuple(outgoing[n.id]),
                boundaries=tuple(boundaries.get(n.id, ())),
            )
            nodes[n.id] = node
            if n.kind == "callActivity" and node.called:
                calls.append(node.called)
            if n.default is not None and n.default not in outgoing[n.id]:
                self.bad(n.id, n.kind, f"default flow {n.default!r} is not an outgoing flow")
            if n.kind in ("subProcess", "transaction") and n.body is not None:
                sub = "eventSubProcess" if n.triggered_by_event else n.kind
                self.scope(n.body, n.id, sub, nodes, flows, scopes, calls, messages, signals)
            if (
                not incoming[n.id]
                and n.kind != "boundaryEvent"
                and not (n.kind == "startEvent" and n.event_definitions)
                and not n.triggered_by_event
            ):
                starts.append(n.id)
        scopes[sid] = ScopeDef(sid, kind, tuple(ev.starts(body, kind, starts)))

    def flow(self, f: object, source: FlowNode) -> Flow:
        from flowlane.model.bpmn_graph import SequenceFlow

        assert isinstance(f, SequenceFlow)
        assert f.source is not None and f.target is not None
        text: str | None = None
        condition: SafeExpression | None = None
        if f.condition is not None and f.condition.text.strip():
            if self.language_ok(f.condition, f.id, "sequenceFlow", "condition"):
                text = f.condition.text.strip()
                language = self.language(f.condition)
                condition = self.expression(text, f.id, "sequenceFlow", "condition", language)
        elif (
            self.options.choice_convention
            and source.kind == "exclusiveGateway"
            and len(source.outgoing) > 1
            and source.default != f.id
            and f.name
        ):
            text = f"choice == {f.name!r}"
            condition = self.expression(text, f.id, "sequenceFlow", "condition")
        return Flow(f.id, f.source, f.target, f.name, condition, text)

    def node(
        self, n: FlowNode, sid: str, messages: dict[str, str], signals: dict[str, str]
    ) -> Node | None:
        base = Node(
            n.id,
            n.kind,
            n.name,
            sid,
            default=n.default,
            attached_to=n.attached_to,
            interrupting=n.cancel_activity,
        )
        self.refuse_extras(n)
        if n.is_event:
            return self.event(n, base, messages, signals)
        spec = self.data_spec(n)
        found = self.activity(n, base)
        return _with(found, data=spec) if found is not None and spec is not None else found

    def data_spec(self, n: FlowNode) -> bpmn_data.DataSpec | None:
        """Loops, task ioSpecification, data objects, decisions (:mod:`bpmn_data`)."""
        if self.data_map is None:
            self.data_map = bpmn_data.data_map(self.set)

        def expression(expr: XmlExpression, element: str, kind: str, what: str) -> Any:
            if not self.language_ok(expr, element, kind, what):
                return None
            text = expr.text.strip()
            return self.expression(text, element, kind, what, self.language(expr))

        return bpmn_data.compile_data(n, self.data_map, self.decisions, self.bad, expression)

    def refuse_extras(self, n: FlowNode) -> None:
        if n.is_event and n.data_associations:
            self.bad(n.id, n.kind, "data associations on events are not supported yet")
        if n.is_for_compensation:
            self.bad(n.id, n.kind, "compensation handlers are not supported yet")

    def event(
        self, n: FlowNode, base: Node, messages: dict[str, str], signals: dict[str, str]
    ) -> Node:
        defs = n.event_definitions
        kind = n.kind
        if kind == "startEvent":
            if defs:
                return self.ev.catch(n, _with(base, interrupting=n.is_interrupting))
            return base
        if kind == "endEvent":
            if not defs:
                return base
            if len(defs) == 1 and defs[0].kind == "terminate":
                return _with(base, terminate=True)
            return self.ev.throws(n, base)
        if kind == "intermediateThrowEvent":
            if defs:
                return self.ev.throws(n, base)
            return base
        if kind in ("intermediateCatchEvent", "boundaryEvent"):
            return self.catch(n, base, messages, signals)
        self.bad(n.id, n.label, f"{kind} is not supported yet")
        return base

    def activity(self, n: FlowNode, base: Node) -> Node | None:
        kind = n.kind
        if kind == "task":
            return _with(base, wait=self.options.task_mode == "wait")
        if kind in WAIT_TASKS:
            return _with(base, wait=True)
        if kind == "serviceTask":
            return base
        if kind == "scriptTask":
            return self.script_task(n, base)
        if kind == "parallelGateway" and self.options.parallel_join == "reachable":
            return _with(base, reachable_join=True)
        if kind in GATEWAYS:
            return base
        if kind == "callActivity":
            return self.call(n, base)
        if kind == "businessRuleTask":
            return base  # its decision is in the node's data spec
        found = ev.activity(self.ev, n, base)
        if found is not None:
            return found
        if kind == "subProcess":
            return base
        self.bad(n.id, kind, f"{kind} is not supported yet")
        return None

    def call(self, n: FlowNode, base: Node) -> Node:
        if not n.called_element:
            self.bad(n.id, n.kind, "no calledElement")
            return base
        ce = n.called_element
        if self.set.callee(ce) is None and ":" in ce:
            ce = ce.partition(":")[2]
        if self.set.callee(ce) is None:
            self.bad(n.id, n.kind, f"the called process {ce!r} was not found")
            return base
        return _with(base, called=ce)

    def script_task(self, n: FlowNode, base: Node) -> Node:
        if n.script is None or not n.script.text.strip():
            return base
        language = script_family(n.script.language, self.options.expressions)
        if language is None:
            self.bad(n.id, n.kind, f"script in language {n.script.language!r} (no adapter)")
            return base
        try:
            if language == "javascript":
                return _with(base, script=compile_js_script(n.script.text))
            return _with(base, script=compile_script(n.script.text))
        except (ExpressionError, RecursionError, MemoryError) as exc:
            what = "JavaScript" if language == "javascript" else "script"
            self.bad(n.id, n.kind, f"{what} outside the safe subset: {expression_problem(exc)}")
            return base

    def catch(
        self, n: FlowNode, base: Node, messages: dict[str, str], signals: dict[str, str]
    ) -> Node:
        defs = n.event_definitions
        if ev.wants_catch(n):
            return self.ev.catch(n, base)
        d = defs[0]
        if d.kind == "message":
            name = messages.get(d.ref or "") if d.ref else None
            return _with(base, trigger="message", event_name=name or n.name or d.ref)
        if d.kind == "signal":
            name = signals.get(d.ref or "") if d.ref else None
            return _with(base, trigger="signal", event_name=name or n.name or d.ref)
        if len(d.timers) != 1 or d.timers[0].kind == "cycle":
            self.bad(n.id, n.label, "timer cycles are not supported yet")
            return base
        t = d.timers[0]
        timer = self.timer_of(t.kind, t.expression, n.id, n.label)
        if timer is None:
            return base
        return _with(base, trigger="timer", timer=timer)

    def timer_of(self, kind: str, expr: XmlExpression, element: str, label: str) -> Timer | None:
        """A timer definition in its expression language (a placeholder-language text
        without ``${...}`` is literal ISO text, bpmn-engine's rule)."""
        text = expr.text.strip()
        if not self.language_ok(expr, element, label, "timer"):
            return None
        language = self.language(expr)
        if language == "placeholder" and not has_placeholder(text):
            return Timer(kind, None, literal=text)
        return Timer(kind, self.expression(text, element, label, "timer", language))


def expression_family(language: str | None, default: str | None) -> str | None:
    """The adapter of an expression's ``language`` (else the import's default language):
    ``python``, ``javascript`` or ``placeholder``; None when there is none. bpmn-engine
    diagrams (default ``javascript`` or ``placeholder``) read an expression without a
    language as ``${...}`` placeholder text."""
    if language and language.strip():
        name = language.strip().lower()
        if name in PYTHON_LANGUAGES:
            return "python"
        if name in JS_LANGUAGES:
            return "javascript"
        return "placeholder" if name in PLACEHOLDER_LANGUAGES else None
    fallback = (default or "python").strip().lower()
    if fallback in PYTHON_LANGUAGES:
        return "python"
    if fallback in JS_LANGUAGES or fallback in PLACEHOLDER_LANGUAGES:
        return "placeholder"
    return None


def script_family(language: str | None, default: str | None) -> str | None:
    """The adapter of a script body: ``python`` or ``javascript``; None when there is none."""
    name = (language or "").strip().lower() or (default or "python").strip().lower()
    if name in PYTHON_LANGUAGES:
        return "python"
    if name in JS_LANGUAGES or name in PLACEHOLDER_LANGUAGES:
        return "javascript"
    return None


def _with(node: Node, **changes: object) -> Node:
    from dataclasses import replace

    return replace(node, **changes)  # type: ignore[arg-type]


def _kinds(defs: tuple[EventDefinition, ...]) -> str:
    return "/".join(d.kind for d in defs) or "none"


def _names(d: Definitions, kind: str) -> dict[str, str]:
    return {r.id: r.name or r.id for r in d.roots if r.kind == kind and r.id}


def executable_processes(graph: BpmnGraph) -> list[Process]:
    procs = list(graph.definitions.processes)
    marked = [p for p in procs if p.is_executable]
    return marked or procs


def compile_bpmn(
    bpmn: BpmnSet,
    process: str | None = None,
    options: CompileOptions | None = None,
    decisions: Mapping[str, Decision] | None = None,
) -> BpmnProgram:
    """Compile ``process`` (default: the one executable process of the first file) and every
    process it calls. Raises :class:`BpmnImportError` listing every unsupported element.
    ``decisions``: the DMN decisions deployed with the diagram
    (:func:`flowlane.model.dmn.load_dmn_files`), for business rule tasks."""
    opts = options or CompileOptions()
    if process is None:
        candidates = executable_processes(bpmn.graphs[0]) if bpmn.graphs else []
        if len(candidates) != 1:
            ids = ", ".join(p.id for p in candidates) or "none"
            raise ValidationError(f"name the process to run (executable processes: {ids})")
        process = candidates[0].id
    return _Compiler(bpmn, opts, decisions).program(process)
