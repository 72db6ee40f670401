"""A faithful, read-only model of any BPMN 2.0 document (issue 10, parse-only half).

:mod:`flowlane.model.bpmn` reads and writes flowlane's *own* dialect (ADR 0010); this module
reads *any* BPMN 2.0 file as other tools write it (Camunda, Signavio, Trisotech, bpmn.io,
SpiffArena, the OMG MIWG reference models) without mapping it onto flowlane blocks. It is the
input of the conformance harness (``tools/conformance.py``) and of the future standard-BPMN
execution (ADR 0012).

Two layers, both immutable:

* :class:`XmlNode` — the document as a lossless element tree: every element and attribute of
  every namespace (vendor extensions included) with its text, tail and the namespace
  declarations made on it. :func:`to_xml` writes this tree back, so ``parse(to_xml(parse(x)))
  == parse(x)`` and unknown vendor extensions survive an export verbatim. Comments and
  processing instructions are not kept.
* The typed view (:class:`Definitions` and below) built from the tree: processes,
  collaborations (participants, message flows), lanes, every flow node with its ``kind``
  (the BPMN local name), event definitions (none, message, timer with duration / date /
  cycle, signal, conditional, error, escalation, compensate, terminate, link, cancel; inline
  or by ``eventDefinitionRef``), boundary events (``attached_to``, ``cancel_activity``),
  sub-processes nested to any depth (embedded, event sub-process = ``triggered_by_event``,
  transaction, ad-hoc), call activities (``called_element``), loop characteristics (standard,
  multi-instance parallel / sequential with cardinality, collection, items and completion
  condition), sequence flows (condition with language; ``default`` on gateways *and*
  activities), data objects / stores / references and associations, artifacts, the root
  messages / signals / errors / escalations, and diagram interchange (several diagrams,
  shapes, edges, labels). Every typed element keeps its raw ``attrs`` (all attributes,
  Clark notation ``{ns}local`` for namespaced ones) and its ``extensions`` (the children of
  ``bpmn:extensionElements``, verbatim).

Elements and attributes are matched by namespace URI, never by prefix (``bpmn:``,
``bpmn2:``, ``semantic:`` or a default namespace all work). Names keep embedded LF and CR LF
(written back as character references, so a round trip does not normalise them).

Parsing uses ``defusedxml``: a DTD (hence entity declarations such as "billion laughs") and
external references are refused with a :class:`~flowlane.core.errors.ValidationError` that
names the file.

:func:`load_bpmn_files` loads several files as one deployment: ``calledElement`` resolves
across them (a process or a global task of any loaded file) and :attr:`BpmnSet.problems`
lists every unresolved reference and duplicate id precisely (file, element, attribute).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import (  # type: ignore[import-untyped]
    DefusedXMLParser,
)
from defusedxml.ElementTree import iterparse as _defused_iterparse

from flowlane.core.errors import ValidationError

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XML_NS = "http://www.w3.org/XML/1998/namespace"

EVENT_KINDS = frozenset(
    {
        "startEvent",
        "endEvent",
        "intermediateCatchEvent",
        "intermediateThrowEvent",
        "boundaryEvent",
        "implicitThrowEvent",
    }
)
ACTIVITY_KINDS = frozenset(
    {
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
        "transaction",
        "adHocSubProcess",
    }
)
SUBPROCESS_KINDS = frozenset({"subProcess", "transaction", "adHocSubProcess"})
GATEWAY_KINDS = frozenset(
    {
        "exclusiveGateway",
        "inclusiveGateway",
        "parallelGateway",
        "eventBasedGateway",
        "complexGateway",
    }
)
CHOREOGRAPHY_KINDS = frozenset({"choreographyTask", "subChoreography", "callChoreography"})
FLOW_NODE_KINDS = EVENT_KINDS | ACTIVITY_KINDS | GATEWAY_KINDS | CHOREOGRAPHY_KINDS
DATA_KINDS = frozenset({"dataObject", "dataObjectReference", "dataStoreReference"})
ARTIFACT_KINDS = frozenset({"textAnnotation", "association", "group"})
EVENT_DEFINITION_KINDS = (
    "message",
    "timer",
    "signal",
    "conditional",
    "error",
    "escalation",
    "compensate",
    "terminate",
    "link",
    "cancel",
)
_REFUSED = {
    "DTDForbidden": "a DTD (<!DOCTYPE ...>)",
    "EntitiesForbidden": "an entity declaration",
    "ExternalReferenceForbidden": "an external reference",
}


# ==== the lossless tree =========================================================================


@dataclass(frozen=True)
class XmlNode:
    """One XML element, losslessly: Clark-notation tag and attribute keys, text and tail."""

    tag: str
    attrs: tuple[tuple[str, str], ...] = ()
    text: str | None = None
    children: tuple[XmlNode, ...] = ()
    tail: str | None = None
    nsdecls: tuple[tuple[str, str], ...] = ()
    """(prefix, uri) declared on this element ('' = default namespace)."""

    @property
    def ns(self) -> str:
        return self.tag[1:].partition("}")[0] if self.tag.startswith("{") else ""

    @property
    def local(self) -> str:
        return self.tag.rpartition("}")[2]

    def get(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    def is_bpmn(self, local: str | None = None) -> bool:
        return self.ns == BPMN_NS and (local is None or self.local == local)

    def bpmn(self, local: str) -> list[XmlNode]:
        """The BPMN children called ``local``."""
        return [c for c in self.children if c.ns == BPMN_NS and c.local == local]

    def first(self, local: str, ns: str = BPMN_NS) -> XmlNode | None:
        for c in self.children:
            if c.ns == ns and c.local == local:
                return c
        return None

    def all_text(self) -> str:
        parts = [self.text or ""]
        for c in self.children:
            parts.append(c.all_text())
            parts.append(c.tail or "")
        return "".join(parts)

    def walk(self) -> Iterator[XmlNode]:
        yield self
        for c in self.children:
            yield from c.walk()


# ==== the typed view ============================================================================


@dataclass(frozen=True)
class Expression:
    """A formal expression: its text (CDATA included), ``language`` and ``xsi:type``."""

    text: str
    language: str | None = None
    xsi_type: str | None = None


@dataclass(frozen=True)
class Timer:
    kind: str
    """``duration``, ``date`` or ``cycle``."""
    expression: Expression


@dataclass(frozen=True)
class EventDefinition:
    kind: str
    """One of :data:`EVENT_DEFINITION_KINDS`."""
    id: str | None = None
    ref: str | None = None
    """messageRef / signalRef / errorRef / escalationRef / activityRef (compensate)."""
    timers: tuple[Timer, ...] = ()
    condition: Expression | None = None
    link_name: str | None = None
    link_sources: tuple[str, ...] = ()
    link_target: str | None = None
    by_ref: bool = False
    """Referenced through ``eventDefinitionRef`` rather than written inline."""
    attrs: tuple[tuple[str, str], ...] = ()
    extensions: tuple[XmlNode, ...] = ()


@dataclass(frozen=True)
class Loop:
    kind: str
    """``standard`` or ``multi_instance``."""
    sequential: bool = False
    test_before: bool = False
    loop_maximum: str | None = None
    loop_condition: Expression | None = None
    cardinality: Expression | None = None
    collection: str | None = None
    """loopDataInputRef."""
    output_collection: str | None = None
    """loopDataOutputRef."""
    input_item: str | None = None
    output_item: str | None = None
    completion_condition: Expression | None = None
    attrs: tuple[tuple[str, str], ...] = ()
    extensions: tuple[XmlNode, ...] = ()

    @property
    def marker(self) -> str:
        """The manifest notation: ``standardLoop``, ``MI-parallel`` or ``MI-sequential``."""
        if self.kind == "standard":
            return "standardLoop"
        return "MI-sequential" if self.sequential else "MI-parallel"


@dataclass(frozen=True)
class DataAssociation:
    direction: str
    """``input`` or ``output``."""
    id: str | None
    sources: tuple[str, ...]
    target: str | None
    transformation: Expression | None = None


@dataclass(frozen=True)
class IoSpecification:
    inputs: tuple[tuple[str, str | None], ...] = ()
    """(id, name) of each dataInput."""
    outputs: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class SequenceFlow:
    id: str
    source: str | None
    target: str | None
    name: str | None = None
    condition: Expression | None = None
    attrs: tuple[tuple[str, str], ...] = ()
    extensions: tuple[XmlNode, ...] = ()


@dataclass(frozen=True)
class DataElement:
    kind: str
    """dataObject, dataObjectReference or dataStoreReference."""
    id: str
    name: str | None = None
    ref: str | None = None
    """dataObjectRef / dataStoreRef of a reference."""
    is_collection: bool = False
    state: str | None = None
    attrs: tuple[tuple[str, str], ...] = ()
    extensions: tuple[XmlNode, ...] = ()


@dataclass(frozen=True)
class Artifact:
    kind: str
    """textAnnotation, association or group."""
    id: str
    text: str | None = None
    source: str | None = None
    target: str | None = None
    direction: str | None = None
    category_value: str | None = None
    attrs: tuple[tuple[str, str], ...] = ()
    extensions: tuple[XmlNode, ...] = ()


@dataclass(frozen=True)
class Lane:
    id: str
    name: str | None
    flow_nodes: tuple[str, ...]
    children: tuple[Lane, ...] = ()
    attrs: tuple[tuple[str, str], ...] = ()
    extensions: tuple[XmlNode, ...] = ()

    def walk(self) -> Iterator[Lane]:
        yield self
        for c in self.children:
            yield from c.walk()


@dataclass(frozen=True)
class Scope:
    """The contents of a process or a sub-process."""

    nodes: tuple[FlowNode, ...] = ()
    flows: tuple[SequenceFlow, ...] = ()
    data: tuple[DataElement, ...] = ()
    artifacts: tuple[Artifact, ...] = ()
    lanes: tuple[Lane, ...] = ()
    """Top lanes of every laneSet (child lanes nested)."""

    def walk_nodes(self) -> Iterator[FlowNode]:
        """Every flow node, sub-process contents included (depth first)."""
        for n in self.nodes:
            yield n
            if n.body is not None:
                yield from n.body.walk_nodes()

    def walk_scopes(self) -> Iterator[Scope]:
        yield self
        for n in self.nodes:
            if n.body is not None:
                yield from n.body.walk_scopes()


@dataclass(frozen=True)
class FlowNode:
    id: str
    kind: str
    """The BPMN local name (``userTask``, ``boundaryEvent``, ``subProcess`` …)."""
    name: str | None = None
    incoming: tuple[str, ...] = ()
    outgoing: tuple[str, ...] = ()
    default: str | None = None
    event_definitions: tuple[EventDefinition, ...] = ()
    attached_to: str | None = None
    cancel_activity: bool = True
    is_interrupting: bool = True
    parallel_multiple: bool = False
    called_element: str | None = None
    triggered_by_event: bool = False
    is_for_compensation: bool = False
    loop: Loop | None = None
    body: Scope | None = None
    """The contents of a sub-process / transaction / ad-hoc sub-process."""
    script: Expression | None = None
    """A script task's ``script`` with ``scriptFormat`` as its language."""
    message_ref: str | None = None
    io: IoSpecification | None = None
    data_associations: tuple[DataAssociation, ...] = ()
    documentation: tuple[str, ...] = ()
    attrs: tuple[tuple[str, str], ...] = ()
    extensions: tuple[XmlNode, ...] = ()

    @property
    def is_event(self) -> bool:
        return self.kind in EVENT_KINDS

    @property
    def is_activity(self) -> bool:
        return self.kind in ACTIVITY_KINDS

    @property
    def is_gateway(self) -> bool:
        return self.kind in GATEWAY_KINDS

    @property
    def is_event_subprocess(self) -> bool:
        return self.kind in SUBPROCESS_KINDS and self.triggered_by_event

    @property
    def label(self) -> str:
        """The manifest notation of the element kind: ``boundaryEvent(message,non-interrupting)``,
        ``endEvent(none)``, ``eventSubProcess``, ``userTask`` …"""
        if self.is_event_subprocess and self.kind == "subProcess":
            return "eventSubProcess"
        if not self.is_event:
            return self.kind
        defs = self.event_definitions
        if not defs:
            what = "none"
        elif len(defs) == 1:
            what = defs[0].kind
        else:
            what = "parallelMultiple" if self.parallel_multiple else "multiple"
        non = (self.kind == "boundaryEvent" and not self.cancel_activity) or (
            self.kind == "startEvent" and not self.is_interrupting
        )
        return f"{self.kind}({what}{',non-interrupting' if non else ''})"


@dataclass(frozen=True)
class Process:
    id: str
    name: str | None
    is_executable: bool | None
    body: Scope
    io: IoSpecification | None = None
    documentation: tuple[str, ...] = ()
    attrs: tuple[tuple[str, str], ...] = ()
    extensions: tuple[XmlNode, ...] = ()


@dataclass(frozen=True)
class Participant:
    id: str
    name: str | None
    process_ref: str | None
    attrs: tuple[tuple[str, str], ...] = ()
    extensions: tuple[XmlNode, ...] = ()


@dataclass(frozen=True)
class MessageFlow:
    id: str
    source: str | None
    target: str | None
    name: str | None = None
    message_ref: str | None = None
    attrs: tuple[tuple[str, str], ...] = ()
    extensions: tuple[XmlNode, ...] = ()


@dataclass(frozen=True)
class Collaboration:
    id: str
    name: str | None
    participants: tuple[Participant, ...] = ()
    message_flows: tuple[MessageFlow, ...] = ()
    artifacts: tuple[Artifact, ...] = ()
    attrs: tuple[tuple[str, str], ...] = ()
    extensions: tuple[XmlNode, ...] = ()


@dataclass(frozen=True)
class RootElement:
    """Any other root element: message, signal, error, escalation, dataStore, itemDefinition,
    interface, globalTask, eventDefinition … with its usual attributes picked out."""

    kind: str
    id: str | None
    name: str | None = None
    code: str | None = None
    """errorCode / escalationCode."""
    item_ref: str | None = None
    """itemRef / structureRef."""
    attrs: tuple[tuple[str, str], ...] = ()
    extensions: tuple[XmlNode, ...] = ()


@dataclass(frozen=True)
class Import:
    namespace: str | None
    location: str | None
    import_type: str | None


@dataclass(frozen=True)
class Bounds:
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Shape:
    id: str | None
    element: str | None
    bounds: Bounds | None
    label: Bounds | None = None
    is_expanded: bool | None = None
    is_horizontal: bool | None = None
    attrs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Edge:
    id: str | None
    element: str | None
    waypoints: tuple[tuple[float, float], ...]
    label: Bounds | None = None
    attrs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Diagram:
    id: str | None
    name: str | None
    plane_element: str | None
    shapes: tuple[Shape, ...] = ()
    edges: tuple[Edge, ...] = ()


@dataclass(frozen=True)
class Definitions:
    id: str | None
    name: str | None
    target_namespace: str | None
    expression_language: str | None = None
    imports: tuple[Import, ...] = ()
    processes: tuple[Process, ...] = ()
    collaborations: tuple[Collaboration, ...] = ()
    roots: tuple[RootElement, ...] = ()
    """Every other root element (messages, signals, errors, escalations, data stores …)."""
    diagrams: tuple[Diagram, ...] = ()
    attrs: tuple[tuple[str, str], ...] = ()
    extensions: tuple[XmlNode, ...] = ()

    def of_kind(self, kind: str) -> tuple[RootElement, ...]:
        return tuple(r for r in self.roots if r.kind == kind)

    @property
    def messages(self) -> tuple[RootElement, ...]:
        return self.of_kind("message")

    @property
    def signals(self) -> tuple[RootElement, ...]:
        return self.of_kind("signal")

    @property
    def errors(self) -> tuple[RootElement, ...]:
        return self.of_kind("error")

    @property
    def escalations(self) -> tuple[RootElement, ...]:
        return self.of_kind("escalation")


@dataclass(frozen=True)
class BpmnGraph:
    """One parsed BPMN file: the typed view and the lossless tree it was built from."""

    source: str = field(compare=False)
    """Where it was read from (not part of equality)."""
    definitions: Definitions
    root: XmlNode = field(repr=False)

    def walk_nodes(self) -> Iterator[tuple[Process, FlowNode]]:
        """Every flow node of every process (sub-process contents included)."""
        for p in self.definitions.processes:
            for n in p.body.walk_nodes():
                yield p, n

    def process(self, pid: str) -> Process | None:
        return next((p for p in self.definitions.processes if p.id == pid), None)

    def node(self, nid: str) -> FlowNode | None:
        return next((n for _, n in self.walk_nodes() if n.id == nid), None)


# ==== parsing ===================================================================================


def _error(source: str, message: str) -> ValidationError:
    return ValidationError(f"{source}: {message}", file=source, problem=message)


def _to_node(el: Element, decls: dict[int, list[tuple[str, str]]], depth: int = 0) -> XmlNode:
    if depth > 200:
        raise RecursionError("elements nested more than 200 deep")
    return XmlNode(
        tag=el.tag,
        attrs=tuple(el.attrib.items()),
        text=el.text,
        children=tuple(_to_node(c, decls, depth + 1) for c in el),
        tail=el.tail,
        nsdecls=tuple(decls.get(id(el), ())),
    )


def parse_xml_tree(data: str | bytes, *, source: str) -> XmlNode:
    """Parse XML safely (no DTD, no entities, no external references) into a lossless tree."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    parser = DefusedXMLParser(
        target=TreeBuilder(),
        # text already decoded: its XML declaration's encoding no longer applies
        encoding="utf-8" if isinstance(data, str) else None,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    decls: dict[int, list[tuple[str, str]]] = {}
    pending: list[tuple[str, str]] = []
    root: Element | None = None
    keep: list[Element] = []
    try:
        for event, item in _defused_iterparse(
            io.BytesIO(raw), events=("start-ns", "start"), parser=parser
        ):
            if event == "start-ns":
                pending.append((item[0] or "", item[1]))
            elif event == "start":
                if root is None:
                    root = item
                if pending:
                    keep.append(item)  # id() must stay unique while the tree lives
                    decls[id(item)] = pending
                    pending = []
    except DefusedXmlException as exc:
        what = _REFUSED.get(type(exc).__name__, "unsafe XML")
        raise _error(
            source,
            f"refused: the document holds {what}; DTDs, entity declarations and external "
            "references are not allowed in BPMN files",
        ) from None
    except ParseError as exc:
        raise _error(source, f"not well-formed XML: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise _error(source, f"not readable XML: {exc}") from None
    if root is None:
        raise _error(source, "not an XML document")
    try:
        return _to_node(root, decls)
    except RecursionError as exc:
        raise _error(source, f"not readable XML: {exc}") from None


def _bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() == "true"


def _ext(node: XmlNode) -> tuple[XmlNode, ...]:
    ext = node.first("extensionElements")
    return ext.children if ext is not None else ()


def _expr(node: XmlNode | None) -> Expression | None:
    if node is None:
        return None
    return Expression(node.all_text(), node.get("language"), node.get(f"{{{XSI_NS}}}type"))


def _texts(node: XmlNode, local: str) -> tuple[str, ...]:
    return tuple(c.all_text().strip() for c in node.bpmn(local))


def _event_definition(node: XmlNode, by_ref: bool = False) -> EventDefinition:
    kind = node.local.removesuffix("EventDefinition")
    ref = None
    for attr in ("messageRef", "signalRef", "errorRef", "escalationRef", "activityRef"):
        ref = ref or node.get(attr)
    if ref is None:  # BPMN also allows the ref as a child element
        for attr in ("messageRef", "signalRef", "errorRef", "escalationRef"):
            child = node.first(attr)
            if child is not None:
                ref = child.all_text().strip()
    timers = tuple(
        Timer(local.removeprefix("time").lower(), _expr(c) or Expression(""))
        for local in ("timeDuration", "timeDate", "timeCycle")
        for c in node.bpmn(local)
    )
    return EventDefinition(
        kind=kind,
        id=node.get("id"),
        ref=ref,
        timers=timers,
        condition=_expr(node.first("condition")),
        link_name=node.get("name") if kind == "link" else None,
        link_sources=_texts(node, "source"),
        link_target=(_texts(node, "target") or (None,))[0],
        by_ref=by_ref,
        attrs=node.attrs,
        extensions=_ext(node),
    )


def _loop(node: XmlNode) -> Loop | None:
    std = node.first("standardLoopCharacteristics")
    if std is not None:
        return Loop(
            kind="standard",
            test_before=_bool(std.get("testBefore"), False),
            loop_maximum=std.get("loopMaximum"),
            loop_condition=_expr(std.first("loopCondition")),
            attrs=std.attrs,
            extensions=_ext(std),
        )
    mi = node.first("multiInstanceLoopCharacteristics")
    if mi is None:
        return None

    def ref(local: str) -> str | None:
        c = mi.first(local) if mi is not None else None
        if c is None:
            return None
        return c.get("id") or c.get("name") or c.all_text().strip() or None

    return Loop(
        kind="multi_instance",
        sequential=_bool(mi.get("isSequential"), False),
        cardinality=_expr(mi.first("loopCardinality")),
        collection=ref("loopDataInputRef"),
        output_collection=ref("loopDataOutputRef"),
        input_item=ref("inputDataItem"),
        output_item=ref("outputDataItem"),
        completion_condition=_expr(mi.first("completionCondition")),
        attrs=mi.attrs,
        extensions=_ext(mi),
    )


def _io(node: XmlNode) -> IoSpecification | None:
    spec = node.first("ioSpecification")
    if spec is None:
        return None
    return IoSpecification(
        inputs=tuple((c.get("id") or "", c.get("name")) for c in spec.bpmn("dataInput")),
        outputs=tuple((c.get("id") or "", c.get("name")) for c in spec.bpmn("dataOutput")),
    )


def _associations(node: XmlNode) -> tuple[DataAssociation, ...]:
    out: list[DataAssociation] = []
    for local, direction in (
        ("dataInputAssociation", "input"),
        ("dataOutputAssociation", "output"),
    ):
        for c in node.bpmn(local):
            target = c.first("targetRef")
            out.append(
                DataAssociation(
                    direction=direction,
                    id=c.get("id"),
                    sources=_texts(c, "sourceRef"),
                    target=target.all_text().strip() if target is not None else None,
                    transformation=_expr(c.first("transformation")),
                )
            )
    return tuple(out)


class _Builder:
    def __init__(self, root: XmlNode) -> None:
        self.definitions_by_id: dict[str, XmlNode] = {}
        for c in root.children:
            if c.ns == BPMN_NS and c.local.endswith("EventDefinition") and c.get("id"):
                self.definitions_by_id[c.get("id") or ""] = c

    def event_definitions(self, node: XmlNode) -> tuple[EventDefinition, ...]:
        defs: list[EventDefinition] = []
        for c in node.children:
            if c.ns != BPMN_NS:
                continue
            if c.local.endswith("EventDefinition"):
                defs.append(_event_definition(c))
            elif c.local == "eventDefinitionRef":
                target = self.definitions_by_id.get(c.all_text().strip())
                if target is not None:
                    defs.append(_event_definition(target, by_ref=True))
        return tuple(defs)

    def flow_node(self, node: XmlNode) -> FlowNode:
        kind = node.local
        script = node.first("script")
        return FlowNode(
            id=node.get("id") or "",
            kind=kind,
            name=node.get("name"),
            incoming=_texts(node, "incoming"),
            outgoing=_texts(node, "outgoing"),
            default=node.get("default"),
            event_definitions=self.event_definitions(node) if kind in EVENT_KINDS else (),
            attached_to=node.get("attachedToRef"),
            cancel_activity=_bool(node.get("cancelActivity"), True),
            is_interrupting=_bool(node.get("isInterrupting"), True),
            parallel_multiple=_bool(node.get("parallelMultiple"), False),
            called_element=node.get("calledElement"),
            triggered_by_event=_bool(node.get("triggeredByEvent"), False),
            is_for_compensation=_bool(node.get("isForCompensation"), False),
            loop=_loop(node),
            body=self.scope(node) if kind in SUBPROCESS_KINDS else None,
            script=(
                Expression(script.all_text(), node.get("scriptFormat"))
                if script is not None
                else None
            ),
            message_ref=node.get("messageRef"),
            io=_io(node),
            data_associations=_associations(node),
            documentation=_texts(node, "documentation"),
            attrs=node.attrs,
            extensions=_ext(node),
        )

    def lane(self, node: XmlNode) -> Lane:
        children: list[Lane] = []
        for child_set in node.bpmn("childLaneSet"):
            children.extend(self.lane(c) for c in child_set.bpmn("lane"))
        return Lane(
            id=node.get("id") or "",
            name=node.get("name"),
            flow_nodes=_texts(node, "flowNodeRef"),
            children=tuple(children),
            attrs=node.attrs,
            extensions=_ext(node),
        )

    def artifact(self, node: XmlNode) -> Artifact:
        text = node.first("text")
        return Artifact(
            kind=node.local,
            id=node.get("id") or "",
            text=text.all_text() if text is not None else None,
            source=node.get("sourceRef"),
            target=node.get("targetRef"),
            direction=node.get("associationDirection"),
            category_value=node.get("categoryValueRef"),
            attrs=node.attrs,
            extensions=_ext(node),
        )

    def scope(self, node: XmlNode) -> Scope:
        nodes: list[FlowNode] = []
        flows: list[SequenceFlow] = []
        data: list[DataElement] = []
        artifacts: list[Artifact] = []
        lanes: list[Lane] = []
        for c in node.children:
            if c.ns != BPMN_NS:
                continue
            if c.local in FLOW_NODE_KINDS:
                nodes.append(self.flow_node(c))
            elif c.local == "sequenceFlow":
                flows.append(
                    SequenceFlow(
                        id=c.get("id") or "",
                        source=c.get("sourceRef"),
                        target=c.get("targetRef"),
                        name=c.get("name"),
                        condition=_expr(c.first("conditionExpression")),
                        attrs=c.attrs,
                        extensions=_ext(c),
                    )
                )
            elif c.local in DATA_KINDS:
                state = c.first("dataState")
                data.append(
                    DataElement(
                        kind=c.local,
                        id=c.get("id") or "",
                        name=c.get("name"),
                        ref=c.get("dataObjectRef") or c.get("dataStoreRef"),
                        is_collection=_bool(c.get("isCollection"), False),
                        state=state.get("name") if state is not None else None,
                        attrs=c.attrs,
                        extensions=_ext(c),
                    )
                )
            elif c.local in ARTIFACT_KINDS:
                artifacts.append(self.artifact(c))
            elif c.local == "laneSet":
                lanes.extend(self.lane(lane) for lane in c.bpmn("lane"))
        return Scope(tuple(nodes), tuple(flows), tuple(data), tuple(artifacts), tuple(lanes))

    def collaboration(self, node: XmlNode) -> Collaboration:
        return Collaboration(
            id=node.get("id") or "",
            name=node.get("name"),
            participants=tuple(
                Participant(
                    id=c.get("id") or "",
                    name=c.get("name"),
                    process_ref=c.get("processRef"),
                    attrs=c.attrs,
                    extensions=_ext(c),
                )
                for c in node.bpmn("participant")
            ),
            message_flows=tuple(
                MessageFlow(
                    id=c.get("id") or "",
                    source=c.get("sourceRef"),
                    target=c.get("targetRef"),
                    name=c.get("name"),
                    message_ref=c.get("messageRef"),
                    attrs=c.attrs,
                    extensions=_ext(c),
                )
                for c in node.bpmn("messageFlow")
            ),
            artifacts=tuple(
                self.artifact(c) for c in node.children if c.is_bpmn() and c.local in ARTIFACT_KINDS
            ),
            attrs=node.attrs,
            extensions=_ext(node),
        )

    def definitions(self, root: XmlNode) -> Definitions:
        processes: list[Process] = []
        collaborations: list[Collaboration] = []
        roots: list[RootElement] = []
        imports: list[Import] = []
        for c in root.children:
            if c.ns != BPMN_NS:
                continue
            if c.local == "process":
                processes.append(
                    Process(
                        id=c.get("id") or "",
                        name=c.get("name"),
                        is_executable=(
                            None
                            if c.get("isExecutable") is None
                            else _bool(c.get("isExecutable"), False)
                        ),
                        body=self.scope(c),
                        io=_io(c),
                        documentation=_texts(c, "documentation"),
                        attrs=c.attrs,
                        extensions=_ext(c),
                    )
                )
            elif c.local == "collaboration":
                collaborations.append(self.collaboration(c))
            elif c.local == "import":
                imports.append(Import(c.get("namespace"), c.get("location"), c.get("importType")))
            elif c.local not in ("extensionElements", "documentation"):
                roots.append(
                    RootElement(
                        kind=c.local,
                        id=c.get("id"),
                        name=c.get("name"),
                        code=c.get("errorCode") or c.get("escalationCode"),
                        item_ref=c.get("itemRef") or c.get("structureRef"),
                        attrs=c.attrs,
                        extensions=_ext(c),
                    )
                )
        return Definitions(
            id=root.get("id"),
            name=root.get("name"),
            target_namespace=root.get("targetNamespace"),
            expression_language=root.get("expressionLanguage"),
            imports=tuple(imports),
            processes=tuple(processes),
            collaborations=tuple(collaborations),
            roots=tuple(roots),
            diagrams=tuple(
                _diagram(d) for d in root.children if d.tag == f"{{{BPMNDI_NS}}}BPMNDiagram"
            ),
            attrs=root.attrs,
            extensions=_ext(root),
        )


def _float(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0


def _bounds(node: XmlNode | None) -> Bounds | None:
    if node is None:
        return None
    b = node.first("Bounds", DC_NS)
    if b is None:
        return None
    return Bounds(
        _float(b.get("x")), _float(b.get("y")), _float(b.get("width")), _float(b.get("height"))
    )


def _opt_bool(value: str | None) -> bool | None:
    return None if value is None else _bool(value, False)


def _diagram(node: XmlNode) -> Diagram:
    plane = node.first("BPMNPlane", BPMNDI_NS)
    shapes: list[Shape] = []
    edges: list[Edge] = []
    for c in plane.children if plane is not None else ():
        label = c.first("BPMNLabel", BPMNDI_NS)
        if c.tag == f"{{{BPMNDI_NS}}}BPMNShape":
            shapes.append(
                Shape(
                    id=c.get("id"),
                    element=c.get("bpmnElement"),
                    bounds=_own_bounds(c),
                    label=_bounds(label),
                    is_expanded=_opt_bool(c.get("isExpanded")),
                    is_horizontal=_opt_bool(c.get("isHorizontal")),
                    attrs=c.attrs,
                )
            )
        elif c.tag == f"{{{BPMNDI_NS}}}BPMNEdge":
            edges.append(
                Edge(
                    id=c.get("id"),
                    element=c.get("bpmnElement"),
                    waypoints=tuple(
                        (_float(w.get("x")), _float(w.get("y")))
                        for w in c.children
                        if w.local == "waypoint"
                    ),
                    label=_bounds(label),
                    attrs=c.attrs,
                )
            )
    return Diagram(
        id=node.get("id"),
        name=node.get("name"),
        plane_element=plane.get("bpmnElement") if plane is not None else None,
        shapes=tuple(shapes),
        edges=tuple(edges),
    )


def _own_bounds(shape: XmlNode) -> Bounds | None:
    return _bounds(shape)


def parse_bpmn(data: str | bytes, *, source: str = "diagram.bpmn") -> BpmnGraph:
    """Parse one BPMN 2.0 document (any prefix) into a :class:`BpmnGraph`."""
    root = parse_xml_tree(data, source=source)
    if root.tag != f"{{{BPMN_NS}}}definitions":
        raise _error(
            source,
            f"not a BPMN 2.0 document: the root element is {root.tag!r}, not bpmn:definitions",
        )
    return graph_of(root, source=source)


def graph_of(root: XmlNode, *, source: str = "diagram.bpmn") -> BpmnGraph:
    """The typed view of a lossless tree."""
    return BpmnGraph(source, _Builder(root).definitions(root), root)


def load_bpmn(path: str | Path) -> BpmnGraph:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise _error(str(p), f"cannot read: {exc.strerror or exc}") from None
    return parse_bpmn(data, source=str(p))


# ==== writing ===================================================================================


def _escape_text(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _escape_attr(value: str) -> str:
    return _escape_text(value).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


def _split(key: str) -> tuple[str, str]:
    if key.startswith("{"):
        ns, _, local = key[1:].partition("}")
        return ns, local
    return "", key


class _Writer:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.counter = 0

    def fresh(self, scope: dict[str, str]) -> str:
        while True:
            self.counter += 1
            prefix = f"ns{self.counter}"
            if prefix not in scope:
                return prefix

    def prefix_for(
        self, ns: str, scope: dict[str, str], decls: list[tuple[str, str]], *, element: bool
    ) -> str:
        if ns == XML_NS:
            return "xml"
        if element and scope.get("") == ns:
            return ""
        for prefix, uri in reversed(decls):
            if uri == ns and prefix:
                return prefix
        for prefix, uri in scope.items():
            if uri == ns and prefix and _visible(prefix, ns, scope):
                return prefix
        prefix = self.fresh(scope)
        scope[prefix] = ns
        decls.append((prefix, ns))
        return prefix

    def write(self, node: XmlNode, outer: dict[str, str]) -> None:
        scope = dict(outer)
        decls = list(node.nsdecls)
        for prefix, uri in decls:
            scope[prefix] = uri
        ns, local = _split(node.tag)
        if ns:
            prefix = self.prefix_for(ns, scope, decls, element=True)
        else:
            prefix = ""
            if scope.get(""):
                scope[""] = ""
                decls.append(("", ""))
        name = f"{prefix}:{local}" if prefix else local
        parts = [f"<{name}"]
        attrs: list[str] = []
        for key, value in node.attrs:
            ans, alocal = _split(key)
            aname = alocal
            if ans:
                aname = f"{self.prefix_for(ans, scope, decls, element=False)}:{alocal}"
            attrs.append(f' {aname}="{_escape_attr(value)}"')
        for p, uri in decls:
            parts.append(
                f' xmlns:{p}="{_escape_attr(uri)}"' if p else f' xmlns="{_escape_attr(uri)}"'
            )
        parts.extend(attrs)
        self.out.append("".join(parts))
        if not node.children and node.text is None:
            self.out.append("/>")
        else:
            self.out.append(">")
            if node.text:
                self.out.append(_escape_text(node.text))
            for c in node.children:
                self.write(c, scope)
            self.out.append(f"</{name}>")
        if node.tail:
            self.out.append(_escape_text(node.tail))


def _visible(prefix: str, ns: str, scope: dict[str, str]) -> bool:
    return scope.get(prefix) == ns


def tree_to_xml(root: XmlNode) -> str:
    w = _Writer()
    w.out.append('<?xml version="1.0" encoding="UTF-8"?>\n')
    w.write(replace(root, tail=None), {})
    w.out.append("\n")
    return "".join(w.out)


def to_xml(graph: BpmnGraph) -> str:
    """The document as XML text: the lossless tree, vendor extensions and DI included."""
    return tree_to_xml(graph.root)


# ==== checks and counts =========================================================================


@dataclass(frozen=True)
class Problem:
    """A reference that does not resolve, or an id used twice."""

    file: str
    element: str
    """The id (or kind) of the element that holds the bad reference."""
    attribute: str
    value: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.element}: {self.attribute}={self.value!r}: {self.message}"


def element_counts(graph: BpmnGraph) -> Counter[str]:
    """Counts of the BPMN elements of the file in the conformance manifest's notation:
    flow nodes by :attr:`FlowNode.label`, loop markers (``standardLoop``, ``MI-parallel``,
    ``MI-sequential``), and process, collaboration, participant, lane, messageFlow,
    sequenceFlow, data elements, artifacts and root elements by kind."""
    d = graph.definitions
    counts: Counter[str] = Counter()
    counts["process"] += len(d.processes)
    counts["collaboration"] += len(d.collaborations)
    for r in d.roots:
        counts[r.kind] += 1
    for c in d.collaborations:
        counts["participant"] += len(c.participants)
        counts["messageFlow"] += len(c.message_flows)
        for a in c.artifacts:
            counts[a.kind] += 1
    for p in d.processes:
        for s in p.body.walk_scopes():
            counts["sequenceFlow"] += len(s.flows)
            for de in s.data:
                counts[de.kind] += 1
            for a in s.artifacts:
                counts[a.kind] += 1
            for top in s.lanes:
                counts["lane"] += sum(1 for _ in top.walk())
            for n in s.nodes:
                counts[n.label] += 1
                if n.loop is not None:
                    counts[n.loop.marker] += 1
    return counts


_ID_NAMESPACES = frozenset({BPMN_NS, BPMNDI_NS, DC_NS, DI_NS})
"""Ids of these namespaces must be unique (vendor elements may repeat an id as a reference)."""


def _ids(graph: BpmnGraph) -> dict[str, list[XmlNode]]:
    seen: dict[str, list[XmlNode]] = {}
    for node in graph.root.walk():
        i = node.get("id")
        if i is not None and node.ns in _ID_NAMESPACES:
            seen.setdefault(i, []).append(node)
    return seen


def _local_ref(ref: str, known: set[str] | dict[str, Any]) -> bool:
    """``ref`` names a known id, also as a QName (``tns:Foo``)."""
    return ref in known or (":" in ref and ref.partition(":")[2] in known)


_SAME_SCOPE = "flow node of the same process/sub-process"
_REF_KINDS = frozenset({"message", "signal", "error", "escalation"})


class _Checker:
    def __init__(self, graph: BpmnGraph, callables: set[str] | None) -> None:
        self.graph = graph
        self.problems: list[Problem] = []
        d = graph.definitions
        self.ids = _ids(graph)
        self.all_ids = set(self.ids)
        self.roots: dict[str, set[str]] = {}
        for r in d.roots:
            if r.id:
                self.roots.setdefault(r.kind, set()).add(r.id)
        self.callables = callables
        if callables is None:
            self.callables = {p.id for p in d.processes} | {
                r.id for r in d.roots if r.id and r.kind.startswith("global")
            }
        self.flow_nodes = {n.id for _, n in graph.walk_nodes()}

    def bad(self, element: str, attribute: str, value: str, message: str) -> None:
        self.problems.append(Problem(self.graph.source, element, attribute, value, message))

    def need(
        self, element: str, attribute: str, value: str | None, known: set[str], what: str
    ) -> None:
        if value is not None and not _local_ref(value, known):
            self.bad(element, attribute, value, f"no {what} has this id")

    def duplicates(self) -> None:
        for i, nodes in self.ids.items():
            if len(nodes) > 1:
                kinds = ", ".join(n.local for n in nodes)
                self.bad(i, "id", i, f"id used {len(nodes)} times ({kinds})")

    def node(self, n: FlowNode, here: set[str], flows: dict[str, SequenceFlow]) -> None:
        self.need(n.id, "attachedToRef", n.attached_to, here, "activity of the same scope")
        if n.kind == "boundaryEvent" and n.attached_to is None:
            self.bad(n.id, "attachedToRef", "", "missing")
        if n.default is not None:
            f = flows.get(n.default)
            if f is None or f.source != n.id:
                self.bad(n.id, "default", n.default, "not an outgoing flow of it")
        callables = self.callables or set()
        self.need(n.id, "calledElement", n.called_element, callables, "process or global task")
        self.need(n.id, "messageRef", n.message_ref, self.roots.get("message", set()), "message")
        for ed in n.event_definitions:
            if ed.ref is not None and ed.kind in _REF_KINDS:
                self.need(n.id, f"{ed.kind}Ref", ed.ref, self.roots.get(ed.kind, set()), ed.kind)

    def scope(self, scope: Scope) -> None:
        here = {n.id for n in scope.nodes}
        flows = {f.id: f for f in scope.flows}
        for f in scope.flows:
            self.need(f.id, "sourceRef", f.source, here, _SAME_SCOPE)
            self.need(f.id, "targetRef", f.target, here, _SAME_SCOPE)
            if f.source is None or f.target is None:
                self.bad(f.id, "sourceRef/targetRef", "", "missing")
        for n in scope.nodes:
            self.node(n, here, flows)
        for a in scope.artifacts:
            self.need(a.id, "sourceRef", a.source, self.all_ids, "element")
            self.need(a.id, "targetRef", a.target, self.all_ids, "element")
        for top in scope.lanes:
            for lane in top.walk():
                for ref in lane.flow_nodes:
                    self.need(lane.id, "flowNodeRef", ref, self.flow_nodes, "flow node")

    def collaboration(self, c: Collaboration) -> None:
        processes = {p.id for p in self.graph.definitions.processes}
        ends = self.flow_nodes | {pt.id for pt in c.participants}
        for pt in c.participants:
            self.need(pt.id, "processRef", pt.process_ref, processes, "process")
        for mf in c.message_flows:
            self.need(mf.id, "sourceRef", mf.source, ends, "participant or flow node")
            self.need(mf.id, "targetRef", mf.target, ends, "participant or flow node")
            messages = self.roots.get("message", set())
            self.need(mf.id, "messageRef", mf.message_ref, messages, "message")

    def run(self) -> list[Problem]:
        d = self.graph.definitions
        self.duplicates()
        for p in d.processes:
            for scope in p.body.walk_scopes():
                self.scope(scope)
        for c in d.collaborations:
            self.collaboration(c)
        for dg in d.diagrams:
            for sh in dg.shapes:
                self.need(sh.id or "BPMNShape", "bpmnElement", sh.element, self.all_ids, "element")
            for edge in dg.edges:
                self.need(
                    edge.id or "BPMNEdge", "bpmnElement", edge.element, self.all_ids, "element"
                )
        return self.problems


def check_graph(graph: BpmnGraph, *, callables: set[str] | None = None) -> list[Problem]:
    """Unresolved references and duplicate ids of one file. ``callables`` are the ids a
    ``calledElement`` may name (by default the file's processes and global tasks)."""
    return _Checker(graph, callables).run()


@dataclass(frozen=True)
class Call:
    file: str
    activity: str
    called_element: str
    resolved_file: str | None


@dataclass(frozen=True)
class BpmnSet:
    """Several files loaded as one deployment."""

    graphs: tuple[BpmnGraph, ...]
    calls: tuple[Call, ...]
    problems: tuple[Problem, ...]

    def callee(self, called_element: str) -> tuple[BpmnGraph, Process] | None:
        for g in self.graphs:
            p = g.process(called_element)
            if p is not None:
                return g, p
        return None


def load_bpmn_files(paths: Iterable[str | Path]) -> BpmnSet:
    """Load the files together; ``calledElement`` resolves to a process or global task of any
    of them. Problems: unresolved references, ids used twice in one file, and a process id
    defined by two files (which one a call means would be ambiguous)."""
    graphs = tuple(load_bpmn(p) for p in paths)
    return check_set(graphs)


def check_set(graphs: Sequence[BpmnGraph]) -> BpmnSet:
    owner: dict[str, list[str]] = {}
    for g in graphs:
        for p in g.definitions.processes:
            owner.setdefault(p.id, []).append(g.source)
        for r in g.definitions.roots:
            if r.id and r.kind.startswith("global"):
                owner.setdefault(r.id, []).append(g.source)
    problems: list[Problem] = []
    for pid, files in owner.items():
        if len(files) > 1:
            problems.append(
                Problem(files[1], pid, "id", pid, f"process id also defined in {files[0]}")
            )
    calls: list[Call] = []
    callables = set(owner)
    for g in graphs:
        problems.extend(check_graph(g, callables=callables))
        for _, n in g.walk_nodes():
            if n.called_element is None:
                continue
            ce = n.called_element
            key = ce if ce in owner else ce.partition(":")[2]
            callee = owner.get(key)
            calls.append(Call(g.source, n.id, ce, callee[0] if callee else None))
    return BpmnSet(tuple(graphs), tuple(calls), tuple(problems))
