"""flowlane processes as BPMN 2.0 XML and back (the designer's format; ADR 0010).

THE CONTRACT (the designer's JavaScript and its moddle descriptor rely on it):

* Namespace ``flowlane`` = :data:`FLOWLANE_NS`. One ``bpmn:process`` (id = the process key,
  ``name`` = its name) with ``flowlane:settings`` = JSON of every top-level key of the process
  file except ``key``, ``name`` and ``blocks`` (object, task, launch, variables, ...).
* One flow node per block: element id = the block id (``flowlane:block`` holds the real id
  when it is not a valid XML id), ``name`` = the block's ``name`` (else its title / type),
  ``flowlane:type`` = the block type, ``flowlane:params`` = JSON of the block's parameters
  without its exits and without ``type`` / ``name``; option / exit / branch *names* stay in
  the params with their targets left out (``options: {"yes": null}``, ``exits: {"ok": null}``,
  ``branches: [{"if": "..."}]``), so an exit nobody drew is an empty exit.
  Element kinds: start → startEvent; end → endEvent + terminateEventDefinition; fork / join →
  parallelGateway; condition → exclusiveGateway; wait_for → intermediateCatchEvent +
  conditionalEventDefinition; delay → intermediateCatchEvent + timerEventDefinition;
  question / call / task → userTask; operation → serviceTask; counter → scriptTask;
  message → sendTask; subprocess → callActivity (calledElement = process key); for_each →
  callActivity + multiInstanceLoopCharacteristics.
* One ``bpmn:sequenceFlow`` per filled exit, ``flowlane:exit`` = the exit's label as
  :func:`flowlane.model.process.exits_of` names it (``next``, ``next[0]`` … for a fork,
  ``branches[0]``, ``else``, ``on_timeout``, ``options.<name>``, ``exits.<result>``); ``name``
  = a readable label (the option / result name, "else", "timeout"); a condition branch also
  carries its expression as ``conditionExpression``. A drawn flow without ``flowlane:exit``
  is the source's only ``next`` (an error where the block has several exits).
* ``bpmndi`` shapes and edges for everything (auto layout when the input has none).

ADDITIONS to the contract (all optional on input; the reader falls back as described):

* ``flowlane:key`` on the process: the real key when it cannot be the process id (not a
  valid XML id, or a block has that id). Read: ``flowlane:key``, else the process id.
* ``flowlane:named="true"`` on a flow node whose block ``name`` equals its fallback label
  (title / type): without it such a label reads as "no name".
* A fork keeps its arity in the params: ``next: [null, null]`` (targets left out), so an
  undrawn last branch survives. A flow without ``flowlane:exit`` from a fork fills its first
  undrawn slot (or adds one).
* Flows without ``flowlane:exit`` are also matched by what a modeler draws: a condition's
  ``default`` flow (or one named "else") is its ``else``, one with a ``conditionExpression``
  is the branch with that expression (a new one when none has it); a flow from a question /
  call is the option it is named after (a new option for a new name); from a subprocess the
  result it is named after; a ``wait_for``'s flow named "timeout" is its ``on_timeout``.
  A labelled branch's ``conditionExpression`` wins over the ``if`` in the params.
* ``bpmn:documentation`` of a node (of the process) is its ``note`` (the ``description``)
  when the params (settings) have none.
* Plain BPMN elements without ``flowlane:type`` are read by kind: startEvent → start,
  endEvent (none / terminate) → end, parallelGateway → fork (join with several incoming
  flows and one outgoing), exclusiveGateway → condition, userTask / manualTask / task →
  task (a question when several named flows leave it: one option per name), serviceTask →
  operation, sendTask → message, callActivity → subprocess (for_each when multi-instance),
  a timer catch event with ``timeDuration`` → delay, a conditional catch event → wait_for.
  Anything else is an error naming the element; lanes, annotations, associations, groups
  and data objects are ignored.

Parsing uses ``defusedxml``: a DTD, entity declarations and external references are
refused. Elements and attributes are matched by namespace URI, never by prefix.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import fromstring as _defused_fromstring  # type: ignore[import-untyped]

from flowlane.core.errors import ValidationError
from flowlane.model.process import BLOCK_TYPES
from flowlane.model.yamlio import dump_yaml, parse_text

FLOWLANE_NS = "https://flowlane.dev/schema/bpmn/1.0"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
TARGET_NS = "https://flowlane.dev/bpmn"

NAMESPACES = {
    "bpmn": BPMN_NS,
    "bpmndi": BPMNDI_NS,
    "dc": DC_NS,
    "di": DI_NS,
    "xsi": XSI_NS,
    "flowlane": FLOWLANE_NS,
}

EVENT_SIZE = (36, 36)
GATEWAY_SIZE = (50, 50)
TASK_SIZE = (100, 80)

KIND: dict[str, str] = {
    "start": "startEvent",
    "end": "endEvent",
    "fork": "parallelGateway",
    "join": "parallelGateway",
    "condition": "exclusiveGateway",
    "wait_for": "intermediateCatchEvent",
    "delay": "intermediateCatchEvent",
    "question": "userTask",
    "call": "userTask",
    "task": "userTask",
    "operation": "serviceTask",
    "counter": "scriptTask",
    "message": "sendTask",
    "subprocess": "callActivity",
    "for_each": "callActivity",
}
"""The BPMN element kind of each block type."""

TOP_ORDER = (
    "key",
    "name",
    "description",
    "object",
    "draft",
    "template",
    "tags",
    "loop_limit",
    "task",
    "launch",
    "variables",
    "counters",
)
"""The order of a process file's top-level keys when written (then any other, then blocks)."""

_NEXT_TYPES = frozenset(
    {"start", "join", "wait_for", "delay", "task", "operation", "counter", "message"}
    | {"subprocess", "for_each"}
)
"""Block types with a ``next`` exit (besides fork's list)."""

_EXIT_KEYS = ("next", "options", "exits", "branches", "else", "on_timeout")

_NCNAME = re.compile(r"^[^\W\d][\w.\-]*$")
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LABEL = re.compile(
    r"^(?:(next|branches)\[(\d+)\]|(options|exits)\.(.+)|(next|else|on_timeout))$", re.S
)
_MAX_INDEX = 1000


def _ncname(text: str) -> bool:
    return bool(_NCNAME.match(text)) and ":" not in text


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


def _error(source: str, where: str, message: str, **fields: Any) -> ValidationError:
    text = f"{source}: {where}: {message}" if where else f"{source}: {message}"
    return ValidationError(text, file=source, problem=message, **fields)


# ==== process -> BPMN ==========================================================================


@dataclass
class _Block:
    bid: str
    type: str
    name: str | None
    params: dict[str, Any]
    exits: list[tuple[str, str | None]]


@dataclass
class _Flow:
    fid: str
    source: str
    target: str
    label: str
    name: str | None
    condition: str | None


def _xml_text(value: str, source: str, where: str, what: str) -> str:
    bad = _NOT_XML.search(value)
    if bad:
        raise _error(
            source, where, f"{what} holds a character XML cannot carry (U+{ord(bad.group()):04X})"
        )
    return value


def _json(value: Any, source: str, where: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise _error(source, where, f"cannot be written as JSON: {exc}") from None


def _target(value: Any, source: str, bid: str, label: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _error(source, f"block {bid}", f"{label} must be a block id or null")


def _split_fork(bid: str, params: dict[str, Any], source: str) -> list[tuple[str, str | None]]:
    nxt = params.get("next")
    if nxt is None:
        return []
    if not isinstance(nxt, list):
        raise _error(source, f"block {bid}", "next must be a list of block ids")
    params["next"] = [None] * len(nxt)
    return [(f"next[{i}]", _target(t, source, bid, f"next[{i}]")) for i, t in enumerate(nxt)]


def _split_condition(bid: str, params: dict[str, Any], source: str) -> list[tuple[str, str | None]]:
    exits: list[tuple[str, str | None]] = []
    branches = params.get("branches")
    if branches is not None:
        if not isinstance(branches, list) or not all(isinstance(b, dict) for b in branches):
            raise _error(source, f"block {bid}", "branches must be a list of {if, next}")
        kept = []
        for i, branch in enumerate(branches):
            b = {("if" if k == "if_" else k): v for k, v in branch.items()}
            label = f"branches[{i}]"
            exits.append((label, _target(b.pop("next", None), source, bid, label)))
            kept.append(b)
        params["branches"] = kept
    if "else" in params:
        exits.append(("else", _target(params.pop("else"), source, bid, "else")))
    return exits


def _split_named(
    bid: str, key: str, params: dict[str, Any], source: str
) -> list[tuple[str, str | None]]:
    named = params.get(key)
    if named is None:
        return []
    if not isinstance(named, dict):
        raise _error(source, f"block {bid}", f"{key} must be a mapping of names to block ids")
    params[key] = dict.fromkeys(named)
    return [(f"{key}.{k}", _target(t, source, bid, f"{key}.{k}")) for k, t in named.items()]


def _split_block(bid: str, raw: Any, source: str) -> _Block:
    """A block's type, name, params (exits left out, names kept) and exits in order."""
    where = f"block {bid}"
    if not isinstance(raw, dict):
        raise _error(source, where, "a block must be a mapping")
    btype = raw.get("type")
    if btype not in BLOCK_TYPES:
        raise _error(source, where, f"unknown block type {btype!r}")
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise _error(source, where, "name must be text")
    params = {
        ("else" if k == "else_" and "else" not in raw else k): v
        for k, v in raw.items()
        if k not in ("type", "name")
    }
    exits: list[tuple[str, str | None]] = []
    if btype == "fork":
        exits = _split_fork(bid, params, source)
    elif btype == "condition":
        exits = _split_condition(bid, params, source)
    elif btype in ("question", "call", "subprocess"):
        exits = _split_named(bid, "exits" if btype == "subprocess" else "options", params, source)
    if btype in _NEXT_TYPES and "next" in params:
        exits.insert(0, ("next", _target(params.pop("next"), source, bid, "next")))
    if btype == "wait_for" and "on_timeout" in params:
        exits.append(("on_timeout", _target(params.pop("on_timeout"), source, bid, "on_timeout")))
    return _Block(bid, btype, name, params, exits)


def _fallback(btype: str, params: dict[str, Any]) -> str:
    """The label of a block without a name: its title, else its type."""
    title = params.get("title")
    return title if isinstance(title, str) and title.strip() else btype


def _flow_name(label: str, block: _Block) -> str | None:
    found = _LABEL.match(label)
    assert found is not None, label
    if found.group(3):
        return found.group(4)
    if label == "else":
        return "else"
    if label == "on_timeout":
        return "timeout"
    if found.group(1) == "branches":
        expr = block.params["branches"][int(found.group(2))].get("if")
        if isinstance(expr, str):
            return expr if len(expr) <= 40 else expr[:39] + "…"
    return None


def _flow_suffix(label: str) -> str:
    found = _LABEL.match(label)
    assert found is not None, label
    if found.group(1) == "next":
        return found.group(2)
    if found.group(1) == "branches":
        return "if" + found.group(2)
    if found.group(3):
        return re.sub(r"[^\w-]+", "_", found.group(4)).strip("_") or "exit"
    return {"next": "", "else": "else", "on_timeout": "timeout"}[label]


class _Ids:
    """Unique XML ids: the wanted one when valid and free, else a readable variant."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, wanted: str, prefix: str) -> str:
        base = wanted if _ncname(wanted) else prefix + "_" + re.sub(r"[^\w.-]+", "_", wanted)
        if not _ncname(base):
            base = prefix
        candidate, n = base, 1
        while candidate in self.used:
            n += 1
            candidate = f"{base}_{n}"
        self.used.add(candidate)
        return candidate


@dataclass
class _Node:
    """A tiny XML element for writing: prefixed tag, attributes, text, children."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[_Node] = field(default_factory=list)
    text: str | None = None

    def add(self, tag: str, text: str | None = None, **attrs: str) -> _Node:
        child = _Node(tag, {k.replace("__", ":"): v for k, v in attrs.items()}, text=text)
        self.children.append(child)
        return child

    def write(self, out: list[str], depth: int) -> None:
        pad = "  " * depth
        attrs = "".join(f' {k}="{_escape_attr(v)}"' for k, v in self.attrs.items())
        if self.text is not None:
            out.append(f"{pad}<{self.tag}{attrs}>{_escape_text(self.text)}</{self.tag}>")
        elif not self.children:
            out.append(f"{pad}<{self.tag}{attrs} />")
        else:
            out.append(f"{pad}<{self.tag}{attrs}>")
            for child in self.children:
                child.write(out, depth + 1)
            out.append(f"{pad}</{self.tag}>")


def _escape_text(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _escape_attr(value: str) -> str:
    return _escape_text(value).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


_DEFINITIONS = {
    "end": ("terminateEventDefinition", "terminate"),
    "wait_for": ("conditionalEventDefinition", "condition"),
    "delay": ("timerEventDefinition", "timer"),
    "for_each": ("multiInstanceLoopCharacteristics", "loop"),
}
"""The child element a block type's node carries (and the suffix of its id)."""


def _blocks_of(data: Any, source: str) -> tuple[str, list[_Block]]:
    if not isinstance(data, dict):
        raise _error(source, "", "a process file must be a mapping")
    key = data.get("key")
    if not isinstance(key, str) or not key:
        raise _error(source, "", "the process has no key")
    if data.get("bpmn") is not None and "blocks" not in data:
        raise _error(
            source, "", "a standard BPMN process (bpmn:) is its diagram already: use that file"
        )
    blocks_raw = data.get("blocks")
    if not isinstance(blocks_raw, dict):
        raise _error(source, "", "blocks must be a mapping of block ids to blocks")
    blocks = [_split_block(str(bid), raw, source) for bid, raw in blocks_raw.items()]
    known = {b.bid for b in blocks}
    for b in blocks:
        for label, t in b.exits:
            if t is not None and t not in known:
                raise _error(source, f"block {b.bid}", f"{label} leads to unknown block {t!r}")
    return key, blocks


def _condition_text(block: _Block, label: str) -> str | None:
    """A branch's expression as its flow's conditionExpression (when XML keeps it exact)."""
    if not label.startswith("branches["):
        return None
    expr = block.params["branches"][int(label[9:-1])].get("if")
    if isinstance(expr, str) and "\r" not in expr and not _NOT_XML.search(expr):
        return expr
    return None


class _Writer:
    """Writes one process as a BPMN document."""

    def __init__(self, data: dict[str, Any], source: str) -> None:
        self.source = source
        self.data = data
        self.key, self.blocks = _blocks_of(data, source)
        self.ids = _Ids()
        self.el_id = {b.bid: self.ids.take(b.bid, "Block") for b in self.blocks}
        free = _ncname(self.key) and self.key not in self.ids.used
        self.proc_id = self.ids.take(self.key if free else f"Process_{self.key}", "Process")
        self.flows: list[_Flow] = []
        for b in self.blocks:
            for label, t in b.exits:
                if t is None:
                    continue
                suffix = _flow_suffix(label)
                wanted = f"Flow_{self.el_id[b.bid]}" + (f"_{suffix}" if suffix else "")
                name = _flow_name(label, b)
                self.flows.append(
                    _Flow(
                        self.ids.take(wanted, "Flow"),
                        b.bid,
                        t,
                        label,
                        None if name is None else _NOT_XML.sub("", name),
                        _condition_text(b, label),
                    )
                )
        self.names: dict[str, str] = {}

    def write(self) -> str:
        root = _Node("bpmn:definitions", {f"xmlns:{p}": ns for p, ns in NAMESPACES.items()})
        root.attrs.update(
            {
                "id": self.ids.take("Definitions_flowlane", "Definitions"),
                "targetNamespace": TARGET_NS,
                "exporter": "flowlane",
                "exporterVersion": "1.0",
            }
        )
        self.process(root)
        self.diagram(root)
        out = ['<?xml version="1.0" encoding="UTF-8"?>']
        root.write(out, 0)
        return "\n".join(out) + "\n"

    def process(self, root: _Node) -> None:
        proc = root.add("bpmn:process", id=self.proc_id, isExecutable="false")
        if self.proc_id != self.key:
            proc.attrs["flowlane:key"] = _xml_text(self.key, self.source, "", "the key")
        pname = self.data.get("name")
        if pname is not None:
            proc.attrs["name"] = _xml_text(str(pname), self.source, "", "the name")
        settings = {k: v for k, v in self.data.items() if k not in ("key", "name", "blocks")}
        proc.attrs["flowlane:settings"] = _json(settings, self.source, "settings")
        for b in self.blocks:
            self.node(proc, b)
        for f in self.flows:
            fl = proc.add(
                "bpmn:sequenceFlow",
                id=f.fid,
                sourceRef=self.el_id[f.source],
                targetRef=self.el_id[f.target],
            )
            if f.name is not None:
                fl.attrs["name"] = f.name
            where = f"block {f.source}"
            fl.attrs["flowlane:exit"] = _xml_text(f.label, self.source, where, "an exit name")
            if f.condition is not None:
                fl.add("bpmn:conditionExpression", f.condition, xsi__type="bpmn:tFormalExpression")

    def node(self, proc: _Node, b: _Block) -> None:
        where, eid = f"block {b.bid}", self.el_id[b.bid]
        node = proc.add(f"bpmn:{KIND[b.type]}", id=eid)
        if eid != b.bid:
            node.attrs["flowlane:block"] = _xml_text(b.bid, self.source, where, "the block id")
        fallback = _fallback(b.type, b.params)
        label = b.name if b.name is not None else fallback
        node.attrs["name"] = self.names[b.bid] = _xml_text(label, self.source, where, "name")
        if b.name is not None and b.name == fallback:
            node.attrs["flowlane:named"] = "true"
        node.attrs["flowlane:type"] = b.type
        node.attrs["flowlane:params"] = _json(b.params, self.source, where)
        default = [f.fid for f in self.flows if f.source == b.bid and f.label == "else"]
        if b.type == "condition" and default:
            node.attrs["default"] = default[0]
        if b.type in ("subprocess", "for_each") and isinstance(b.params.get("process"), str):
            node.attrs["calledElement"] = _NOT_XML.sub("", b.params["process"])
        for f in self.flows:
            if f.target == b.bid:
                node.add("bpmn:incoming", f.fid)
        for f in self.flows:
            if f.source == b.bid:
                node.add("bpmn:outgoing", f.fid)
        if b.type in _DEFINITIONS:
            tag, suffix = _DEFINITIONS[b.type]
            node.add(f"bpmn:{tag}", id=self.ids.take(f"{eid}_{suffix}", "Def"))

    def diagram(self, root: _Node) -> None:
        sizes = {b.bid: _size(b.type) for b in self.blocks}
        starts = [b.bid for b in self.blocks if b.type == "start"]
        lay = _layout([b.bid for b in self.blocks], starts, sizes, self.flows)
        diagram = root.add("bpmndi:BPMNDiagram", id=self.ids.take("BPMNDiagram_1", "BPMNDiagram"))
        plane = diagram.add(
            "bpmndi:BPMNPlane",
            id=self.ids.take("BPMNPlane_1", "BPMNPlane"),
            bpmnElement=self.proc_id,
        )
        for b in self.blocks:
            eid = self.el_id[b.bid]
            x, y, w, h = lay.boxes[b.bid]
            shape = plane.add(
                "bpmndi:BPMNShape", id=self.ids.take(f"{eid}_di", "Shape"), bpmnElement=eid
            )
            if b.type == "condition":
                shape.attrs["isMarkerVisible"] = "true"
            _bounds(shape, x, y, w, h)
            if KIND[b.type].endswith(("Event", "Gateway")):
                lw, lh = _label_size(self.names[b.bid])
                _bounds(shape.add("bpmndi:BPMNLabel"), x + w // 2 - lw // 2, y + h + 5, lw, lh)
        for f in self.flows:
            edge = plane.add(
                "bpmndi:BPMNEdge", id=self.ids.take(f"{f.fid}_di", "Edge"), bpmnElement=f.fid
            )
            for px, py in lay.routes[f.fid]:
                edge.add("di:waypoint", x=str(px), y=str(py))
            if f.name:
                lx, ly = lay.label_at[f.fid]
                lw, lh = _label_size(f.name)
                _bounds(edge.add("bpmndi:BPMNLabel"), lx, ly - lh, lw, lh)


def process_to_bpmn(data: dict[str, Any], *, source: str = "process.yaml") -> str:
    """A process file (as data) as BPMN 2.0 XML with a fresh left-to-right layout.

    The data needs the structure of a process file (blocks of known types, exits that name
    blocks); everything else is carried over as it is. Errors are :class:`ValidationError`
    naming ``source`` and the block."""
    return _Writer(data, source).write()


def _bounds(node: _Node, x: int, y: int, w: int, h: int) -> None:
    node.add("dc:Bounds", x=str(x), y=str(y), width=str(w), height=str(h))


def _label_size(text: str) -> tuple[int, int]:
    width = min(max(len(text) * 7, 20), 90)
    lines = max(1, min(4, math.ceil(len(text) * 7 / 90)))
    return width, 14 * lines


def _size(btype: str) -> tuple[int, int]:
    kind = KIND[btype]
    if kind.endswith("Event"):
        return EVENT_SIZE
    if kind.endswith("Gateway"):
        return GATEWAY_SIZE
    return TASK_SIZE


# ---- layout ------------------------------------------------------------------------------------

GAP = 100
"""Horizontal space between layers (where flows bend and their labels sit)."""
ROW = 120
"""Vertical distance between rows of a layer."""
ORIGIN = (160, 100)


@dataclass
class _Layout:
    boxes: dict[str, tuple[int, int, int, int]]
    routes: dict[str, list[tuple[int, int]]]
    label_at: dict[str, tuple[int, int]]


def _back_edges(
    nodes: list[str], roots: list[str], flows: list[_Flow]
) -> tuple[set[str], dict[str, int]]:
    """Flows that close a loop (depth-first from the starts, then from the rest), and the
    order nodes were discovered in."""
    out: dict[str, list[_Flow]] = {n: [] for n in nodes}
    for f in flows:
        out[f.source].append(f)
    state: dict[str, int] = dict.fromkeys(nodes, 0)
    seen: dict[str, int] = {}
    back: set[str] = set()
    for root in [*roots, *nodes]:
        if state[root]:
            continue
        state[root] = 1
        seen[root] = len(seen)
        stack: list[tuple[str, Iterator[_Flow]]] = [(root, iter(out[root]))]
        while stack:
            node, it = stack[-1]
            step = next(it, None)
            if step is None:
                state[node] = 2
                stack.pop()
                continue
            if state[step.target] == 1:
                back.add(step.fid)
            elif state[step.target] == 0:
                state[step.target] = 1
                seen[step.target] = len(seen)
                stack.append((step.target, iter(out[step.target])))
    return back, seen


def _crossings(
    layers: list[list[str]], links: list[tuple[str, str]], layer_of: dict[str, int]
) -> int:
    pos = {n: i for layer in layers for i, n in enumerate(layer)}
    by_layer: dict[int, list[tuple[int, int]]] = {}
    for a, b in links:
        by_layer.setdefault(layer_of[a], []).append((pos[a], pos[b]))
    total = 0
    for pairs in by_layer.values():
        for i, (a1, b1) in enumerate(pairs):
            for a2, b2 in pairs[i + 1 :]:
                if (a1 - a2) * (b1 - b2) < 0:
                    total += 1
    return total


def _layers(nodes: list[str], forward: list[_Flow]) -> dict[str, int]:
    """Each node's layer: the longest path to it from a source over the forward flows."""
    preds: dict[str, int] = dict.fromkeys(nodes, 0)
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for f in forward:
        succs[f.source].append(f.target)
        preds[f.target] += 1
    layer_of: dict[str, int] = dict.fromkeys(nodes, 0)
    ready = [n for n in nodes if preds[n] == 0]
    while ready:
        n = ready.pop(0)
        for s in succs[n]:
            layer_of[s] = max(layer_of[s], layer_of[n] + 1)
            preds[s] -= 1
            if preds[s] == 0:
                ready.append(s)
    return layer_of


def _sweep(
    layers: list[list[str]], index: int, ref: list[str], neighbours: dict[str, list[str]]
) -> None:
    """Sort one layer by the mean position of each node's neighbours in ``ref``."""
    pos = {n: j for j, n in enumerate(ref)}
    here = {n: j for j, n in enumerate(layers[index])}

    def weight(n: str) -> float:
        around = [pos[m] for m in neighbours.get(n, []) if m in pos]
        return sum(around) / len(around) if around else float(here[n])

    layers[index].sort(key=weight)


def _order(
    layers: list[list[str]], links: list[tuple[str, str]], layer_of: dict[str, int]
) -> list[list[str]]:
    """A few barycenter sweeps down and up; the order with the fewest crossings wins."""
    up: dict[str, list[str]] = {}
    down: dict[str, list[str]] = {}
    for a, b in links:
        down.setdefault(a, []).append(b)
        up.setdefault(b, []).append(a)
    best = [list(layer) for layer in layers]
    best_cross = _crossings(best, links, layer_of)
    count = len(layers)
    for _ in range(4):
        for i in range(1, count):
            _sweep(layers, i, layers[i - 1], up)
        for i in range(count - 2, -1, -1):
            _sweep(layers, i, layers[i + 1], down)
        cross = _crossings(layers, links, layer_of)
        if cross < best_cross:
            best, best_cross = [list(layer) for layer in layers], cross
    return best


@dataclass
class _Grid:
    """Where layers and rows are: column x and width per layer, node centres and boxes."""

    col_x: list[int]
    widths: list[int]
    layer_of: dict[str, int]
    center: dict[str, tuple[int, int]]
    boxes: dict[str, tuple[int, int, int, int]]


def _grid(
    layers: list[list[str]], layer_of: dict[str, int], sizes: dict[str, tuple[int, int]]
) -> _Grid:
    widths = [max((sizes[n][0] for n in layer if n in sizes), default=0) for layer in layers]
    col_x: list[int] = []
    x = ORIGIN[0]
    for w in widths:
        col_x.append(x)
        x += w + GAP
    center: dict[str, tuple[int, int]] = {}
    for i, layer in enumerate(layers):
        for row, n in enumerate(layer):
            center[n] = (col_x[i] + widths[i] // 2, ORIGIN[1] + 40 + row * ROW)
    boxes: dict[str, tuple[int, int, int, int]] = {}
    for n, (w, h) in sizes.items():
        cx, cy = center[n]
        boxes[n] = (cx - w // 2, cy - h // 2, w, h)
    return _Grid(col_x, widths, layer_of, center, boxes)


def _route_forward(
    g: _Grid, f: _Flow, chain: list[str]
) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """Right side of the source, bends in the gaps between layers, left side of the target."""
    sx, _, sw, _ = g.boxes[f.source]
    y = g.center[f.source][1]
    points = [(sx + sw, y)]
    label = (sx + sw + 6, y - 4)
    for member in chain[1:]:
        my = g.center[member][1]
        if my != y:
            gx = g.col_x[g.layer_of[member]] - GAP // 2
            points += [(gx, y), (gx, my)]
            y = my
            label = (gx + 6, my - 4)
    points.append((g.boxes[f.target][0], y))
    return points, label


def _route_back(g: _Grid, f: _Flow, k: int) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """A loop: out to the right, down below the layers it spans, left, into the target."""
    shift = 12 + (k % 4) * 8
    ls, lt = g.layer_of[f.source], g.layer_of[f.target]
    bottom = max(y + h for n, (_, y, _, h) in g.boxes.items() if lt <= g.layer_of[n] <= ls)
    channel = bottom + 30 + (k % 6) * 12
    sx, _, sw, _ = g.boxes[f.source]
    sy, ty = g.center[f.source][1], g.center[f.target][1]
    out_x = g.col_x[ls] + g.widths[ls] + GAP // 2 + shift
    in_x = g.col_x[lt] - GAP // 2 - shift
    points = [
        (sx + sw, sy),
        (out_x, sy),
        (out_x, channel),
        (in_x, channel),
        (in_x, ty),
        (g.boxes[f.target][0], ty),
    ]
    return points, (in_x + 6, channel - 4)


def _layout(
    nodes: list[str], roots: list[str], sizes: dict[str, tuple[int, int]], flows: list[_Flow]
) -> _Layout:
    """A left-to-right layered layout: layers by the longest path from the start ignoring
    the flows that close loops, rows ordered to cross less, orthogonal flows."""
    back, seen = _back_edges(nodes, roots, flows)
    forward = [f for f in flows if f.fid not in back]
    layer_of = _layers(nodes, forward)
    # a flow over several layers gets a dummy node in each layer it passes
    chains: dict[str, list[str]] = {}
    links: list[tuple[str, str]] = []
    order_key: dict[str, float] = {n: float(seen[n]) for n in nodes}
    for f in forward:
        chain = [f.source]
        for lay in range(layer_of[f.source] + 1, layer_of[f.target]):
            dummy = f"\x00{f.fid}\x00{lay}"
            layer_of[dummy] = lay
            order_key[dummy] = seen[f.source] + 0.5
            chain.append(dummy)
        chain.append(f.target)
        chains[f.fid] = chain
        links += list(itertools.pairwise(chain))
    layers: list[list[str]] = [[] for _ in range(max(layer_of.values(), default=0) + 1)]
    for n in sorted(layer_of, key=lambda n: order_key[n]):
        layers[layer_of[n]].append(n)
    g = _grid(_order(layers, links, layer_of), layer_of, sizes)
    routes: dict[str, list[tuple[int, int]]] = {}
    label_at: dict[str, tuple[int, int]] = {}
    for f in forward:
        routes[f.fid], label_at[f.fid] = _route_forward(g, f, chains[f.fid])
    for k, f in enumerate(f for f in flows if f.fid in back):
        routes[f.fid], label_at[f.fid] = _route_back(g, f, k)
    return _Layout(g.boxes, routes, label_at)


# ==== BPMN -> process ==========================================================================


def _parse_xml(xml: str | bytes, source: str) -> Element:
    try:
        root = _defused_fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        kind = type(exc).__name__
        what = {
            "DTDForbidden": "a DTD",
            "EntitiesForbidden": "an entity declaration",
            "ExternalReferenceForbidden": "an external reference",
        }.get(kind, "unsafe XML")
        raise _error(source, "", f"refused: the document holds {what} (not allowed)") from None
    except ParseError as exc:
        raise _error(source, "", f"not well-formed XML: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise _error(source, "", f"not readable XML: {exc}") from None
    if not isinstance(root, Element):
        raise _error(source, "", "not an XML document")
    return root


def _split_tag(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


_IGNORED = frozenset(
    {
        "documentation",
        "extensionElements",
        "laneSet",
        "textAnnotation",
        "association",
        "group",
        "dataObject",
        "dataObjectReference",
        "dataStoreReference",
        "property",
        "ioSpecification",
        "category",
    }
)
_NODE_KINDS = frozenset(
    {
        "startEvent",
        "endEvent",
        "intermediateCatchEvent",
        "intermediateThrowEvent",
        "boundaryEvent",
        "task",
        "userTask",
        "manualTask",
        "serviceTask",
        "scriptTask",
        "sendTask",
        "receiveTask",
        "businessRuleTask",
        "callActivity",
        "subProcess",
        "adHocSubProcess",
        "transaction",
        "exclusiveGateway",
        "parallelGateway",
        "inclusiveGateway",
        "eventBasedGateway",
        "complexGateway",
    }
)


@dataclass
class _ReadFlow:
    fid: str
    source: str
    target: str
    label: str | None
    name: str | None
    condition: str | None


@dataclass
class _ReadNode:
    el: Element
    eid: str
    kind: str
    bid: str
    btype: str = ""
    name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    out: list[_ReadFlow] = field(default_factory=list)
    incoming: int = 0


def _fl(name: str) -> str:
    return _q(FLOWLANE_NS, name)


def _children(el: Element, local: str) -> list[Element]:
    return [c for c in el if c.tag == _q(BPMN_NS, local)]


def _text_of(el: Element | None) -> str | None:
    if el is None:
        return None
    return "".join(el.itertext())


def _documentation(el: Element) -> str | None:
    docs = [(_text_of(d) or "") for d in _children(el, "documentation")]
    text = "\n".join(d for d in docs if d.strip())
    return text or None


def _json_object(el: Element, attr: str, eid: str, source: str) -> dict[str, Any]:
    raw = el.get(_fl(attr))
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise _error(source, f"element {eid}", f"flowlane:{attr} is not JSON") from None
    if not isinstance(value, dict):
        raise _error(source, f"element {eid}", f"flowlane:{attr} must be a JSON object")
    return value


def _event_definitions(el: Element) -> list[str]:
    return [
        _split_tag(c.tag)[1]
        for c in el
        if _split_tag(c.tag)[0] == BPMN_NS and _split_tag(c.tag)[1].endswith("EventDefinition")
    ]


class _CannotMap(Exception):
    """A plain BPMN element the reader cannot map (``why`` completes the message)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


_Mapped = tuple[str, dict[str, Any]]


def _plain_start(node: _ReadNode, defs: list[str]) -> _Mapped:
    if defs:
        raise _CannotMap(f" with {defs[0]}")
    return "start", {}


def _plain_end(node: _ReadNode, defs: list[str]) -> _Mapped:
    other = [d for d in defs if d != "terminateEventDefinition"]
    if other:
        raise _CannotMap(f" with {other[0]}")
    return "end", {}


def _plain_parallel(node: _ReadNode, defs: list[str]) -> _Mapped:
    if node.incoming > 1 and len(node.out) > 1:
        raise _CannotMap(" that both joins and forks")
    return ("join" if node.incoming > 1 else "fork"), {}


def _plain_task(node: _ReadNode, defs: list[str]) -> _Mapped:
    """A task; a question when several named flows (one option each) leave it."""
    names = [(f.name or "").strip() for f in node.out if f.label is None]
    if len(node.out) > 1 and all(names) and len(set(names)) == len(names) == len(node.out):
        return "question", {"options": dict.fromkeys(names)}
    return "task", {}


def _plain_call(node: _ReadNode, defs: list[str]) -> _Mapped:
    called = node.el.get("calledElement")
    if not called:
        raise _CannotMap(" without calledElement")
    multi = _children(node.el, "multiInstanceLoopCharacteristics")
    return ("for_each" if multi else "subprocess"), {"process": called}


def _plain_catch(node: _ReadNode, defs: list[str]) -> _Mapped:
    """A timer with a duration is a delay, a conditional event a wait_for."""
    if defs == ["timerEventDefinition"]:
        timer = _children(node.el, "timerEventDefinition")[0]
        duration = (_text_of(next(iter(_children(timer, "timeDuration")), None)) or "").strip()
        if not duration:
            raise _CannotMap(" with a timer other than a timeDuration")
        return "delay", {"for": duration}
    if defs == ["conditionalEventDefinition"]:
        cond_def = _children(node.el, "conditionalEventDefinition")[0]
        cond = (_text_of(next(iter(_children(cond_def, "condition")), None)) or "").strip()
        if not cond:
            raise _CannotMap(" without a condition")
        return "wait_for", {"until": cond}
    raise _CannotMap(f" with {' and '.join(defs)}" if defs else " without an event definition")


_PLAIN = {
    "startEvent": _plain_start,
    "endEvent": _plain_end,
    "parallelGateway": _plain_parallel,
    "exclusiveGateway": lambda node, defs: ("condition", {}),
    "userTask": _plain_task,
    "manualTask": _plain_task,
    "task": _plain_task,
    "serviceTask": lambda node, defs: ("operation", {}),
    "sendTask": lambda node, defs: ("message", {}),
    "callActivity": _plain_call,
    "intermediateCatchEvent": _plain_catch,
}
"""How a plain BPMN element (no ``flowlane:type``) maps to a block, by its kind."""


def _plain(node: _ReadNode, source: str) -> None:
    """Type and params of a BPMN element without ``flowlane:type``, by its kind."""
    defs = _event_definitions(node.el)
    try:
        mapper = _PLAIN.get(node.kind)
        if mapper is None:
            raise _CannotMap(f" with {defs[0]}" if defs else "")
        node.btype, node.params = mapper(node, defs)
    except _CannotMap as exc:
        raise _error(
            source,
            f"element {node.eid}",
            f"cannot map bpmn:{node.kind}{exc.why}; give it a flowlane:type",
            element=node.eid,
        ) from None


class _Exits:
    """Which flow fills which exit of one block; reports exits claimed twice."""

    def __init__(self, node: _ReadNode, source: str) -> None:
        self.node = node
        self.source = source
        self.claims: dict[str, _ReadFlow] = {}
        p = node.params
        self.options: list[str] = []
        if node.btype in ("question", "call", "subprocess"):
            key = "exits" if node.btype == "subprocess" else "options"
            named = p.get(key)
            if named is not None and not isinstance(named, dict):
                raise _error(
                    source, f"element {node.eid}", f"flowlane:params: {key} must be a mapping"
                )
            self.options = [str(k) for k in (named or {})]
        fork = p.get("next") if node.btype == "fork" else None
        self.fork_slots = len(fork) if isinstance(fork, list) else 0
        branches = p.get("branches") if node.btype == "condition" else None
        if branches is not None and (
            not isinstance(branches, list) or not all(isinstance(b, dict) for b in branches)
        ):
            raise _error(
                source, f"element {node.eid}", "flowlane:params: branches must be a list of objects"
            )
        self.branches: list[dict[str, Any]] = [
            {k: v for k, v in b.items() if k not in ("next", "if_")}
            | ({"if": b["if_"]} if "if_" in b and "if" not in b else {})
            for b in (branches or [])
        ]

    @property
    def prefix(self) -> str:
        return "exits" if self.node.btype == "subprocess" else "options"

    def labels(self) -> list[str]:
        """Every exit the block has (as far as its params tell)."""
        t = self.node.btype
        if t == "fork":
            return [f"next[{i}]" for i in range(self.fork_slots)]
        if t == "condition":
            return [*(f"branches[{i}]" for i in range(len(self.branches))), "else"]
        if t in ("question", "call"):
            return [f"options.{o}" for o in self.options]
        if t == "subprocess" and self.options:
            return [f"exits.{o}" for o in self.options]
        if t == "wait_for" and self.node.params.get("timeout"):
            return ["next", "on_timeout"]
        return [] if t == "end" else ["next"]

    def claim(self, label: str, flow: _ReadFlow) -> None:
        other = self.claims.get(label)
        if other is not None:
            raise _error(
                self.source,
                f"element {self.node.eid}",
                f"flows {other.fid} and {flow.fid} both claim exit '{label}'",
            )
        self.claims[label] = flow

    def bad(self, flow: _ReadFlow, why: str) -> ValidationError:
        return _error(self.source, f"element {flow.fid}", why)

    def labelled(self, flow: _ReadFlow) -> None:
        label = flow.label or ""
        t = self.node.btype
        found = _LABEL.match(label)
        ok = False
        if found:
            if found.group(1) == "next":
                ok = t == "fork"
                index = int(found.group(2))
                if ok and index >= _MAX_INDEX:
                    raise self.bad(flow, f"flowlane:exit {label!r}: index too large")
                self.fork_slots = max(self.fork_slots, index + 1) if ok else self.fork_slots
            elif found.group(1) == "branches":
                ok = t == "condition"
                index = int(found.group(2))
                if ok and index >= _MAX_INDEX:
                    raise self.bad(flow, f"flowlane:exit {label!r}: index too large")
                if ok:
                    while len(self.branches) <= index:
                        self.branches.append({})
                    if flow.condition is not None:
                        self.branches[index]["if"] = flow.condition
            elif found.group(3):
                ok = (found.group(3) == "options" and t in ("question", "call")) or (
                    found.group(3) == "exits" and t == "subprocess"
                )
                if ok and found.group(4) not in self.options:
                    self.options.append(found.group(4))
            else:
                ok = {
                    "next": t in _NEXT_TYPES,
                    "else": t == "condition",
                    "on_timeout": t == "wait_for",
                }[label]
        if not ok:
            raise self.bad(
                flow,
                f"flowlane:exit {label!r} is not an exit of block {self.node.bid} ({t})",
            )
        self.claim(label, flow)

    def unlabelled(self, flow: _ReadFlow) -> None:
        t, name = self.node.btype, (flow.name or "").strip()
        if t == "end":
            raise self.bad(flow, f"block {self.node.bid} (end) has no exits")
        if t == "fork":
            free = [i for i in range(self.fork_slots) if f"next[{i}]" not in self.claims]
            index = free[0] if free else self.fork_slots
            self.fork_slots = max(self.fork_slots, index + 1)
            self.claim(f"next[{index}]", flow)
            return
        if t == "condition":
            if self.node.el.get("default") == flow.fid or name.lower() == "else":
                self.claim("else", flow)
            elif flow.condition is not None:
                same = [
                    i
                    for i, b in enumerate(self.branches)
                    if b.get("if") == flow.condition and f"branches[{i}]" not in self.claims
                ]
                if not same:
                    self.branches.append({"if": flow.condition})
                self.claim(f"branches[{same[0] if same else len(self.branches) - 1}]", flow)
            else:
                self.claim("else", flow)
            return
        if t in ("question", "call", "subprocess") and name and (t != "subprocess" or self.options):
            if name not in self.options:
                if t == "subprocess":
                    raise self.bad(
                        flow,
                        f"block {self.node.bid} has no exit named {name!r} "
                        f"(its exits: {', '.join(self.options)})",
                    )
                self.options.append(name)
            self.claim(f"{self.prefix}.{name}", flow)
            return
        if t == "wait_for" and name.lower() in ("timeout", "on_timeout"):
            self.claim("on_timeout", flow)
            return
        labels = self.labels()
        if len(labels) != 1:
            raise self.bad(
                flow,
                f"no flowlane:exit, and block {self.node.bid} ({t}) has "
                f"{'no exits' if not labels else 'several exits: ' + ', '.join(labels)}",
            )
        self.claim(labels[0], flow)

    def _branches(self, target: dict[str, str]) -> list[dict[str, Any]]:
        branches = []
        for i, b in enumerate(self.branches):
            if "if" not in b:
                raise _error(
                    self.source, f"element {self.node.eid}", f"branches[{i}] has no condition"
                )
            branch = {"if": b["if"], **{k: v for k, v in b.items() if k != "if"}}
            if f"branches[{i}]" in target:
                branch["next"] = target[f"branches[{i}]"]
            branches.append(branch)
        return branches

    def _filled(self) -> dict[str, Any]:
        """The exit parameters with their targets: next, options / exits, branches, else."""
        node, t = self.node, self.node.btype
        target = {label: f.target for label, f in self.claims.items()}
        filled: dict[str, Any] = {}
        if t == "fork" and (self.fork_slots or "next" in node.params):
            filled["next"] = [target.get(f"next[{i}]") for i in range(self.fork_slots)]
        if t == "condition" and (self.branches or "branches" in node.params):
            filled["branches"] = self._branches(target)
        if t in ("question", "call", "subprocess") and (self.options or self.prefix in node.params):
            filled[self.prefix] = {o: target.get(f"{self.prefix}.{o}") for o in self.options}
        for label in ("next", "else", "on_timeout"):
            if label in target:
                filled[label] = target[label]
        return filled

    def block(self) -> dict[str, Any]:
        """The block as process-file data: type, name, params with the exits filled in."""
        node, t = self.node, self.node.btype
        out: dict[str, Any] = {"type": t}
        if node.name is not None:
            out["name"] = node.name
        filled = self._filled()
        for k, v in node.params.items():
            if k in ("type", "name"):
                continue
            if k in filled:
                out[k] = filled.pop(k)
            elif not (k in _EXIT_KEYS and _owns_exit(t, k)):
                out[k] = v
        out.update(filled)
        return out


def _owns_exit(btype: str, key: str) -> bool:
    """Whether ``key`` is an exit of this block type (so params' value is not carried)."""
    if key == "next":
        return btype in _NEXT_TYPES or btype == "fork"
    if key in ("branches", "else"):
        return btype == "condition"
    if key == "options":
        return btype in ("question", "call")
    if key == "exits":
        return btype == "subprocess"
    return key == "on_timeout" and btype == "wait_for"


def _pick_process(root: Element, source: str) -> Element:
    if root.tag != _q(BPMN_NS, "definitions"):
        ns, local = _split_tag(root.tag)
        raise _error(
            source,
            "",
            f"not a BPMN 2.0 document (its root is {local!r} in {ns or 'no namespace'!r})",
        )
    procs = _children(root, "process")
    if not procs:
        raise _error(source, "", "the document has no bpmn:process")
    if len(procs) > 1:
        drawn = [p for p in procs if any(_split_tag(c.tag)[1] in _NODE_KINDS for c in p)]
        if len(drawn) != 1:
            ids = ", ".join(p.get("id") or "?" for p in (drawn or procs))
            raise _error(source, "", f"several processes ({ids}): a flowlane diagram has one")
        return drawn[0]
    return procs[0]


def _read_nodes(proc: Element, source: str) -> tuple[dict[str, _ReadNode], list[Element]]:
    """The flow nodes of the process by element id, and its sequence flows."""
    nodes: dict[str, _ReadNode] = {}
    flow_els: list[Element] = []
    by_block: dict[str, str] = {}
    for child in proc:
        ns, local = _split_tag(child.tag)
        if ns != BPMN_NS or local in _IGNORED:
            continue
        if local == "sequenceFlow":
            flow_els.append(child)
            continue
        eid = child.get("id")
        if not eid:
            raise _error(source, "", f"a bpmn:{local} has no id")
        if local not in _NODE_KINDS:
            raise _error(source, f"element {eid}", f"cannot map bpmn:{local} to a block")
        if eid in nodes:
            raise _error(source, f"element {eid}", "the id is used twice")
        bid = child.get(_fl("block")) or eid
        if bid in by_block:
            raise _error(
                source, f"element {eid}", f"block id {bid!r} is taken by element {by_block[bid]}"
            )
        by_block[bid] = eid
        nodes[eid] = _ReadNode(child, eid, local, bid)
    return nodes, flow_els


def _read_flows(flow_els: list[Element], nodes: dict[str, _ReadNode], source: str) -> None:
    """Attach each sequence flow to its source node (its target as a block id)."""
    for el in flow_els:
        fid = el.get("id")
        if not fid:
            raise _error(source, "", "a bpmn:sequenceFlow has no id")
        ends = []
        for attr in ("sourceRef", "targetRef"):
            ref = el.get(attr)
            if not ref or ref not in nodes:
                raise _error(
                    source, f"element {fid}", f"{attr} {ref!r} is not a block of the process"
                )
            ends.append(nodes[ref])
        cond = (_text_of(next(iter(_children(el, "conditionExpression")), None)) or "").strip()
        flow = _ReadFlow(
            fid,
            ends[0].bid,
            ends[1].bid,
            el.get(_fl("exit")) or None,
            el.get("name"),
            _text_of(_children(el, "conditionExpression")[0]) if cond else None,
        )
        ends[0].out.append(flow)
        ends[1].incoming += 1


def _read_block(node: _ReadNode, source: str) -> dict[str, Any]:
    """One flow node as a block (its outgoing flows as its exits)."""
    btype = node.el.get(_fl("type"))
    label = node.el.get("name")
    if btype is not None:
        if btype not in BLOCK_TYPES:
            raise _error(
                source, f"element {node.eid}", f"flowlane:type {btype!r} is not a block type"
            )
        node.btype = btype
        node.params = _json_object(node.el, "params", node.eid, source)
        called = node.el.get("calledElement")
        if btype in ("subprocess", "for_each") and "process" not in node.params and called:
            node.params["process"] = called
        if label is not None and (
            label != _fallback(btype, node.params) or node.el.get(_fl("named")) == "true"
        ):
            node.name = label
    else:
        _plain(node, source)
        node.name = label or None
    note = _documentation(node.el)
    if "note" not in node.params and note is not None:
        node.params["note"] = note
    exits = _Exits(node, source)
    for f in node.out:
        if f.label is not None:
            exits.labelled(f)
    for f in node.out:
        if f.label is None:
            exits.unlabelled(f)
    return exits.block()


def bpmn_to_process(xml: str | bytes, *, source: str) -> dict[str, Any]:
    """Read a BPMN diagram back into a process file (as data, readable key order: key,
    name, description, object, the other settings, then the blocks in diagram order with
    the start first).

    Elements are identified by ``flowlane:type`` (plain BPMN elements by kind, see the
    module docstring); errors are :class:`ValidationError` naming ``source`` and the element.
    The result is not validated: pass it to :func:`flowlane.model.recipe.parse_process`."""
    proc = _pick_process(_parse_xml(xml, source), source)
    pid = proc.get("id") or ""
    settings = _json_object(proc, "settings", pid or "process", source)
    for reserved in ("key", "name", "blocks"):
        if reserved in settings:
            raise _error(source, f"element {pid}", f"flowlane:settings must not hold {reserved!r}")
    nodes, flow_els = _read_nodes(proc, source)
    _read_flows(flow_els, nodes, source)
    blocks = [(node.bid, _read_block(node, source)) for node in nodes.values()]
    out: dict[str, Any] = {"key": proc.get(_fl("key")) or pid}
    if proc.get("name") is not None:
        out["name"] = proc.get("name")
    doc = _documentation(proc)
    if "description" not in settings and doc is not None:
        settings["description"] = doc
    for k in TOP_ORDER[2:]:
        if k in settings:
            out[k] = settings.pop(k)
    out.update(settings)
    out["blocks"] = dict(
        [
            *(b for b in blocks if b[1]["type"] == "start"),
            *(b for b in blocks if b[1]["type"] != "start"),
        ]
    )
    return out


# ==== helpers ==================================================================================


def layout_bpmn(xml: str | bytes, *, source: str = "diagram.bpmn") -> str:
    """The same process with a fresh layout (normalized flowlane BPMN)."""
    return process_to_bpmn(bpmn_to_process(xml, source=source), source=source)


def yaml_to_bpmn(text: str, *, source: str) -> str:
    """Process-file text (YAML or JSON) as BPMN."""
    try:
        data = parse_text(text, source=source)
    except RecursionError:
        raise _error(source, "", "nested too deeply") from None
    if not isinstance(data, dict):
        raise _error(source, "", "a process file must be a mapping")
    return process_to_bpmn(data, source=source)


def bpmn_to_yaml(xml: str | bytes, *, source: str) -> str:
    """A BPMN diagram as process-file YAML text (readable key order)."""
    return dump_yaml(bpmn_to_process(xml, source=source), sort_keys=False)
