"""Compile-time data features of standard BPMN (ADR 0012 stage 3, and DMN of stage 4).

:func:`compile_data` turns a parsed flow node's loop characteristics, task-level
``ioSpecification``, data associations and business-rule decision into one
:class:`DataSpec` that :mod:`flowlane.engine.bpmn_data` executes:

* :class:`LoopSpec` — multi-instance (parallel / sequential; ``loopCardinality`` or
  ``loopDataInputRef`` with ``inputDataItem``; ``loopDataOutputRef`` with
  ``outputDataItem``; ``completionCondition``) or a standard loop (``loopCondition``,
  ``testBefore``, ``loopMaximum``). Data items are named by their **id** (SpiffWorkflow's
  convention, as the manifest says).
* ``inputs`` / ``outputs`` — the ids of a task's ``ioSpecification`` dataInputs /
  dataOutputs: on entry the task's data is exactly its inputs, on completion exactly its
  outputs (a missing one is an error naming it).
* ``reads`` / ``writes`` — data objects (and data stores) behind ``dataInputAssociation`` /
  ``dataOutputAssociation``: process-level storage, not task data (the manifest's
  convention 3); a data object is named by its ``dataObject`` id.
* ``decision`` — the DMN :class:`~flowlane.model.dmn.Decision` of a ``businessRuleTask``
  (``camunda:decisionRef``, ``zeebe:calledDecision/@decisionId`` or
  ``flowlane:decision``), with its ``resultVariable`` if one is named.

Problems are reported through the compiler's ``bad`` callback (import errors by id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from flowlane.expr.compiler import Expression as SafeExpression
from flowlane.model.bpmn_graph import BpmnSet, FlowNode, Scope
from flowlane.model.bpmn_graph import Expression as XmlExpression
from flowlane.model.dmn import Decision

Bad = Callable[[str, str, str], None]
CompileExpression = Callable[[XmlExpression, str, str, str], SafeExpression | None]


@dataclass(frozen=True)
class LoopSpec:
    kind: str
    """``parallel``, ``sequential`` (multi-instance) or ``standard``."""
    cardinality: SafeExpression | None = None
    collection: str | None = None
    """``loopDataInputRef``: the variable holding the list / dict to iterate."""
    output: str | None = None
    """``loopDataOutputRef``: the variable collecting the instances' outputs."""
    input_item: str | None = None
    output_item: str | None = None
    completion: SafeExpression | None = None
    condition: SafeExpression | None = None
    """Standard loop: iterate while this holds."""
    test_before: bool = False
    maximum: int | None = None


@dataclass(frozen=True)
class ObjectRef:
    name: str
    """The variable: the data object's id (a data store's id or reference id)."""
    owner: str
    """The scope element declaring it (process id or sub-process id)."""
    store: bool = False


@dataclass(frozen=True)
class DataSpec:
    loop: LoopSpec | None = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    reads: tuple[ObjectRef, ...] = ()
    writes: tuple[ObjectRef, ...] = ()
    decision: Decision | None = None
    result_variable: str | None = None


@dataclass(frozen=True)
class DataMap:
    """Data objects, their references and data store references of a deployment by id."""

    objects: Mapping[str, ObjectRef]
    references: Mapping[str, str]
    stores: Mapping[str, ObjectRef]

    def resolve(self, ref: str) -> ObjectRef | None:
        if ref in self.objects:
            return self.objects[ref]
        target = self.references.get(ref)
        if target is not None and target in self.objects:
            return self.objects[target]
        return self.stores.get(ref)


def _scopes(body: Scope, owner: str) -> Iterator[tuple[Scope, str]]:
    yield body, owner
    for n in body.nodes:
        if n.body is not None:
            yield from _scopes(n.body, n.id)


def data_map(bpmn: BpmnSet) -> DataMap:
    objects: dict[str, ObjectRef] = {}
    references: dict[str, str] = {}
    stores: dict[str, ObjectRef] = {}
    for g in bpmn.graphs:
        for p in g.definitions.processes:
            for body, owner in _scopes(p.body, p.id):
                for d in body.data:
                    if d.kind == "dataObject":
                        objects[d.id] = ObjectRef(d.id, owner)
                    elif d.kind == "dataObjectReference" and d.ref:
                        references[d.id] = d.ref
                    elif d.kind == "dataStoreReference":
                        stores[d.id] = ObjectRef(d.ref or d.id, p.id, store=True)
    return DataMap(objects, references, stores)


def _attr(n: FlowNode, local: str) -> str | None:
    for key, value in n.attrs:
        if key == local or key.endswith("}" + local):
            return value
    return None


def _decision_ref(n: FlowNode) -> tuple[str | None, str | None]:
    ref = _attr(n, "decisionRef") or _attr(n, "decision")
    result = _attr(n, "resultVariable")
    for ext in n.extensions:
        if ext.local == "calledDecision":
            ref = ref or ext.get("decisionId")
            result = result or ext.get("resultVariable")
    return ref, result


def _maximum(text: str | None, n: FlowNode, bad: Bad) -> int | None:
    if text is None or not text.strip():
        return None
    try:
        value = int(text.strip())
    except ValueError:
        bad(n.id, n.kind, f"loopMaximum {text!r} is not an integer")
        return None
    return value


def _loop(n: FlowNode, bad: Bad, expression: CompileExpression) -> LoopSpec | None:
    loop = n.loop
    if loop is None:
        return None

    def compiled(expr: XmlExpression | None, what: str) -> SafeExpression | None:
        if expr is None or not expr.text.strip():
            return None
        return expression(expr, n.id, n.kind, what)

    if loop.kind == "standard":
        return LoopSpec(
            "standard",
            condition=compiled(loop.loop_condition, "loopCondition"),
            test_before=loop.test_before,
            maximum=_maximum(loop.loop_maximum, n, bad),
        )
    cardinality = compiled(loop.cardinality, "loopCardinality")
    if cardinality is None and loop.collection is None:
        bad(n.id, n.kind, "multi-instance needs loopCardinality or loopDataInputRef")
    if loop.output_collection is not None and loop.output_item is None:
        bad(n.id, n.kind, "loopDataOutputRef needs an outputDataItem")
    return LoopSpec(
        "sequential" if loop.sequential else "parallel",
        cardinality=cardinality,
        collection=loop.collection,
        output=loop.output_collection,
        input_item=loop.input_item,
        output_item=loop.output_item,
        completion=compiled(loop.completion_condition, "completionCondition"),
    )


def compile_data(
    n: FlowNode,
    objects: DataMap,
    decisions: Mapping[str, Decision],
    bad: Bad,
    expression: CompileExpression,
) -> DataSpec | None:
    """The :class:`DataSpec` of ``n`` (None when it has no data feature)."""
    loop = _loop(n, bad, expression)
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    if n.io is not None and n.kind != "callActivity":
        inputs = tuple(i for i, _ in n.io.inputs if i)
        outputs = tuple(o for o, _ in n.io.outputs if o)
    reads: list[ObjectRef] = []
    writes: list[ObjectRef] = []
    for a in n.data_associations:
        if a.transformation is not None and a.transformation.text.strip():
            bad(n.id, n.kind, f"data association {a.id}: transformations are not supported")
            continue
        if a.direction == "input":
            for s in a.sources:
                found = objects.resolve(s)
                if found is None:
                    bad(n.id, n.kind, f"data input association {a.id}: {s!r} is no data object")
                else:
                    reads.append(found)
        else:
            found = objects.resolve(a.target or "")
            if found is None:
                bad(n.id, n.kind, f"data output association {a.id}: {a.target!r} is no data object")
            else:
                writes.append(found)
    decision: Decision | None = None
    result: str | None = None
    if n.kind == "businessRuleTask":
        ref, result = _decision_ref(n)
        if ref is None:
            bad(n.id, n.kind, "no decision named (camunda:decisionRef / zeebe:calledDecision)")
        elif ref not in decisions:
            bad(n.id, n.kind, f"decision {ref!r} is not in the loaded DMN files")
        else:
            decision = decisions[ref]
    if loop is None and not (inputs or outputs or reads or writes or decision):
        return None
    return DataSpec(loop, inputs, outputs, tuple(reads), tuple(writes), decision, result)
