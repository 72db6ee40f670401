"""Data features of the standard-BPMN interpreter (ADR 0012 stage 3, and DMN).

Hooks called by :class:`flowlane.engine.bpmn.BpmnRun` for nodes carrying a
:class:`~flowlane.model.bpmn_data.DataSpec`:

* :func:`enter` when a token arrives at the activity: a loop starts (below), else the
  task's data objects are read into its data and a task ``ioSpecification`` narrows its
  data to the declared inputs (a missing input is an error at the task);
* :func:`leave` when the activity completes: the data becomes exactly the declared outputs
  (a missing output is an error), data objects written are *moved* out of the task data
  into process-level storage (SpiffWorkflow's rule), data objects read are dropped; an
  inner instance of a loop reports to its loop instead of leaving;
* :func:`condition_view`: conditions see the data objects of their scope chain under the
  token's own data;
* the ``businessRuleTask`` handler evaluates its DMN decision in the step.

**Loops.** The token of a looping activity waits (``wait: "loop"``) while a *body* scope
(kind ``loop``) holds its inner instances: tokens at the same node marked ``inner`` (the
instance's position). Multi-instance: items are the ``loopDataInputRef`` collection's
elements (list index or dict key kept) or ``0..n-1`` for ``loopCardinality``; each
instance gets a copy of the data plus ``inputDataItem``; parallel creates all at once (in
index order: a host completing "the first ready instance" completes them in index order),
sequential the next when one completes. ``completionCondition`` (on the finished
instance's data) cancels the rest. Outputs (``outputDataItem``) are collected into
``loopDataOutputRef`` in index order: a dict output (or an in-place update of the input)
by key, else appended; a pre-existing non-empty list output is an error (Spiff). Without
an output collection the instances' data is deep-merged back in completion order. A
standard loop runs iterations while ``loopCondition`` holds (tested before the first one
when ``testBefore``), at most ``loopMaximum`` times, each iteration's data merged back.
The looping activity itself is not recorded as completed; each instance is.

A multi-instance has at most :data:`MAX_INSTANCES` instances (a larger ``loopCardinality``
or ``loopDataInputRef`` collection stops the run in error at the activity), and every
instance created counts as a step towards the interpreter's ``MAX_STEPS`` loop guard.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowlane.core.errors import FlowlaneError
from flowlane.model.bpmn_data import DataSpec, LoopSpec, ObjectRef

if TYPE_CHECKING:  # pragma: no cover
    from flowlane.engine.bpmn import BpmnRun, Token
    from flowlane.model.bpmn_compile import Node

MAX_INSTANCES = 1000
"""The most instances one multi-instance activity may have (cardinality or collection)."""


def _too_many(run: BpmnRun, n: Node, what: str, count: int) -> None:
    if count > MAX_INSTANCES:
        run._fail(
            n.id,
            f"{n.id}: {what} asks for {count} instances, more than the limit of "
            f"{MAX_INSTANCES} instances of a multi-instance activity",
        )


def _spec(n: Node) -> DataSpec | None:
    spec = getattr(n, "data", None)
    return spec if isinstance(spec, DataSpec) else None


# ---- data objects -------------------------------------------------------------------------


def _storage(run: BpmnRun, scope_id: str, ref: ObjectRef) -> dict[str, Any]:
    """The object storage of the scope instance declaring ``ref`` (walking up from
    ``scope_id``; the outermost scope reached when none declares it)."""
    scopes = run.state["scopes"]
    sid: str | None = scope_id
    last = scope_id
    while sid is not None and sid in scopes:
        s = scopes[sid]
        last = sid
        if s["kind"] != "loop" and s["element"] == ref.owner:
            break
        if s["kind"] == "call" and not ref.store:
            break
        sid = s["parent"]
    if ref.store:
        return run.state.setdefault("stores", {})  # type: ignore[no-any-return]
    return scopes[last].setdefault("objects", {})  # type: ignore[no-any-return]


def data_objects(run: BpmnRun) -> dict[str, Any]:
    """Every data object value of the live scopes and the data stores (for diagnostics)."""
    found: dict[str, Any] = {}
    for s in run.state["scopes"].values():
        found.update(copy.deepcopy(s.get("objects") or {}))
    found.update(copy.deepcopy(run.state.get("stores") or {}))
    return found


def _has_objects(run: BpmnRun) -> bool:
    scopes = run.state["scopes"].values()
    return bool(run.state.get("stores")) or any(s.get("objects") for s in scopes)


def scope_view(run: BpmnRun, scope_id: str | None, data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data`` over the data objects visible from scope instance ``scope_id`` (its chain of
    enclosing scopes up to its process; the root process when ``scope_id`` is None) and the
    data stores: what a condition evaluated in that scope reads."""
    if not _has_objects(run):
        return data
    scopes = run.state["scopes"]
    chain: list[dict[str, Any]] = []
    sid = scope_id
    while sid is not None and sid in scopes:
        chain.append(scopes[sid])
        if scopes[sid]["kind"] == "call":
            break
        sid = scopes[sid]["parent"]
    if not chain:
        chain = [s for s in scopes.values() if s["parent"] is None]
    view: dict[str, Any] = dict(run.state.get("stores") or {})
    for s in reversed(chain):
        view.update(s.get("objects") or {})
    view.update(data)
    return view


def condition_view(run: BpmnRun, data: Mapping[str, Any]) -> Mapping[str, Any]:
    """:func:`scope_view` for the scope of the token holding ``data`` (found by identity)."""
    if not _has_objects(run):
        return data
    owner = next((t for t in run.state["tokens"].values() if t["data"] is data), None)
    return scope_view(run, owner["scope"] if owner is not None else None, data)


# ---- entering and leaving an activity -----------------------------------------------------


def enter(run: BpmnRun, t: Token, n: Node) -> bool:
    """Called when ``t`` arrives at ``n``; True when a loop took the token over."""
    spec = _spec(n)
    if spec is None:
        return False
    if spec.loop is not None and "inner" not in t:
        _start_loop(run, t, n, spec.loop)
        return True
    for ref in spec.reads:
        store = _storage(run, t["scope"], ref)
        if ref.name not in store:
            if ref.store:
                continue
            run._fail(n.id, f"the data object {ref.name!r} could not be read: it has no value")
        t["data"][ref.name] = copy.deepcopy(store[ref.name])
    if spec.inputs:
        missing = [i for i in spec.inputs if i not in t["data"]]
        if missing:
            run._fail(n.id, f"missing data input {missing[0]!r} of {n.id}")
        t["data"] = {i: t["data"][i] for i in spec.inputs}
    return False


def leave(run: BpmnRun, t: Token, n: Node) -> bool:
    """Called when ``n`` completes for ``t``; True when the token was handled (an inner
    instance of a loop reporting to its loop)."""
    spec = _spec(n)
    if spec is None:
        return False
    if t.pop("looped", False):
        return False  # the looping activity itself: its instances did the data work
    if spec.outputs:
        missing = [o for o in spec.outputs if o not in t["data"]]
        if missing:
            run._fail(n.id, f"missing data output {missing[0]!r} of {n.id}")
        t["data"] = {o: t["data"][o] for o in spec.outputs}
    for ref in spec.writes:
        if ref.name not in t["data"]:
            if ref.store:
                continue
            run._fail(n.id, f"the data object {ref.name!r} could not be set: {n.id} has no value")
        _storage(run, t["scope"], ref)[ref.name] = copy.deepcopy(t["data"].pop(ref.name))
    for ref in spec.reads:
        t["data"].pop(ref.name, None)
    if "inner" in t:
        _inner_done(run, t, n)
        return True
    return False


# ---- loops --------------------------------------------------------------------------------


def _items(run: BpmnRun, t: Token, n: Node, loop: LoopSpec) -> list[list[Any]]:
    data = t["data"]
    if loop.collection is not None:
        if loop.collection not in data:
            run._fail(n.id, f"missing data input {loop.collection!r} for the multi-instance")
        value = data[loop.collection]
        if isinstance(value, dict | list | tuple):
            _too_many(run, n, f"loopDataInputRef {loop.collection!r}", len(value))
        if isinstance(value, dict):
            return [[k, v] for k, v in value.items()]
        if isinstance(value, list | tuple):
            return [[i, v] for i, v in enumerate(value)]
        run._fail(n.id, f"the multi-instance input {loop.collection!r} is not a list or a dict")
    assert loop.cardinality is not None
    try:
        count = loop.cardinality.evaluate(data)
    except FlowlaneError as exc:
        run._fail(n.id, f"loopCardinality: {exc}")
    if isinstance(count, str) and count.strip().isdigit() and len(count.strip()) <= 18:
        count = int(count)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        run._fail(n.id, f"loopCardinality is not a count: {str(count)[:100]!r}")
    _too_many(run, n, "loopCardinality", count)
    return [[i, i] for i in range(count)]


def _init_output(run: BpmnRun, t: Token, n: Node, loop: LoopSpec) -> None:
    if loop.output is None:
        return
    data = t["data"]
    source = data.get(loop.collection) if loop.collection is not None else None
    if loop.output not in data:
        data[loop.output] = {} if isinstance(source, dict) else []
        return
    existing = data[loop.output]
    if not isinstance(existing, dict | list):
        run._fail(n.id, f"the multi-instance output {loop.output!r} is not a list or a dict")
    in_place = loop.collection is not None and loop.collection == loop.output
    if isinstance(existing, list) and existing and not in_place:
        run._fail(
            n.id,
            f"the multi-instance output {loop.output!r} must be empty or a dict "
            "(it is not the input updated in place)",
        )


def _start_loop(run: BpmnRun, t: Token, n: Node, loop: LoopSpec) -> None:
    state: dict[str, Any] = {"kind": loop.kind, "count": 0, "next": 0, "results": {}}
    if loop.kind != "standard":
        _init_output(run, t, n, loop)
        state["items"] = _items(run, t, n, loop)
    t["wait"] = "loop"
    run._arm(t, n)
    sid, _ = run._new_id("s")
    run.state["scopes"][sid] = {
        "id": sid,
        "element": n.id,
        "def": run.state["scopes"][t["scope"]]["def"],
        "kind": "loop",
        "parent": t["scope"],
        "token": t["id"],
        "out": None,
    }
    t["child"] = sid
    t["loop"] = state
    if loop.kind == "standard":
        if loop.test_before and not _again(run, t, n, loop):
            _finish(run, t, n, loop)
        else:
            _iteration(run, t, n)
        return
    if not state["items"]:
        _finish(run, t, n, loop)
        return
    if loop.kind == "parallel":
        while state["next"] < len(state["items"]):
            _instance(run, t, n, loop)
    else:
        _instance(run, t, n, loop)


def _count_step(run: BpmnRun, n: Node) -> None:
    """An instance created is a step of the interpreter's loop guard."""
    from flowlane.engine.bpmn import MAX_STEPS

    run._steps += 1
    if run._steps > MAX_STEPS:
        run._fail(n.id, f"loop guard: more than {MAX_STEPS} steps without a wait")


def _instance(run: BpmnRun, outer: Token, n: Node, loop: LoopSpec) -> None:
    _count_step(run, n)
    state = outer["loop"]
    position = state["next"]
    state["next"] += 1
    _, item = state["items"][position]
    data = copy.deepcopy(outer["data"])
    if loop.input_item is not None:
        data[loop.input_item] = copy.deepcopy(item)
    run._token(n.id, outer["child"], None, data, inner=position, outer=outer["id"])


def _iteration(run: BpmnRun, outer: Token, n: Node) -> None:
    _count_step(run, n)
    state = outer["loop"]
    position = state["next"]
    state["next"] += 1
    data = copy.deepcopy(outer["data"])
    run._token(n.id, outer["child"], None, data, inner=position, outer=outer["id"])


def _again(run: BpmnRun, outer: Token, n: Node, loop: LoopSpec) -> bool:
    """Whether a standard loop runs another iteration."""
    if loop.maximum is not None and outer["loop"]["count"] >= loop.maximum:
        return False
    if loop.condition is None:
        return loop.maximum is not None
    try:
        return bool(loop.condition.test(outer["data"]))
    except FlowlaneError as exc:
        run._fail(n.id, f"loopCondition: {exc}")
        return False


def _inner_done(run: BpmnRun, t: Token, n: Node) -> None:
    outer = run.state["tokens"].get(t.get("outer", ""))
    run.state["tokens"].pop(t["id"], None)
    if outer is None:  # pragma: no cover - cancelled loops drop their instances
        return
    spec = _spec(n)
    assert spec is not None and spec.loop is not None
    loop = spec.loop
    state = outer["loop"]
    state["count"] += 1
    if loop.kind == "standard":
        from flowlane.engine.bpmn import deep_merge

        deep_merge(outer["data"], t["data"])
        if _again(run, outer, n, loop):
            _iteration(run, outer, n)
        else:
            _finish(run, outer, n, loop)
        return
    if loop.output is not None and loop.output_item is not None:
        if loop.output_item not in t["data"]:
            run._fail(n.id, f"an instance of {n.id} has no output item {loop.output_item!r}")
        state["results"][str(t["inner"])] = copy.deepcopy(t["data"][loop.output_item])
    else:
        from flowlane.engine.bpmn import deep_merge

        deep_merge(outer["data"], t["data"])
    if loop.completion is not None:
        try:
            complete = loop.completion.test(t["data"])
        except FlowlaneError as exc:
            run._fail(n.id, f"completionCondition: {exc}")
        if complete:
            _finish(run, outer, n, loop)
            return
    if loop.kind == "sequential" and state["next"] < len(state["items"]):
        _instance(run, outer, n, loop)
        return
    if not any(x["scope"] == outer["child"] for x in run.state["tokens"].values()):
        _finish(run, outer, n, loop)


def _collect(outer: Token, loop: LoopSpec) -> None:
    if loop.output is None or loop.output_item is None:
        return
    state = outer["loop"]
    target = outer["data"][loop.output]
    in_place = loop.collection is not None and loop.collection == loop.output
    for position in sorted(int(p) for p in state["results"]):
        key, _ = state["items"][position]
        value = state["results"][str(position)]
        if isinstance(target, dict) or in_place:
            target[key] = value
        else:
            target.append(value)


def _finish(run: BpmnRun, outer: Token, n: Node, loop: LoopSpec) -> None:
    """End the loop: cancel leftover instances, collect outputs, leave the activity."""
    body = outer.pop("child", None)
    if body is not None:
        for x in list(run.state["tokens"].values()):
            if x["scope"] == body and x.get("outer") == outer["id"]:
                run._cancel_token(x)
        if body in run.state["scopes"]:
            run._cancel_scope(body)
            run.state["scopes"].pop(body, None)
    if loop.kind != "standard":
        _collect(outer, loop)
    outer.pop("loop", None)
    outer["wait"] = None
    outer["looped"] = True
    run._leave(outer, n)


# ---- business rule tasks ------------------------------------------------------------------


def _put(data: dict[str, Any], name: str, value: Any) -> None:
    parts = name.split(".")
    for part in parts[:-1]:
        nested = data.get(part)
        if not isinstance(nested, dict):
            nested = data[part] = {}
        data = nested
    data[parts[-1]] = value


def business_rule(run: BpmnRun, t: Token, n: Node) -> None:
    """Evaluate the task's decision on its data; outputs are written by name (a dotted name
    nests), or the whole result under ``resultVariable`` when one is named."""
    spec = _spec(n)
    if spec is not None and spec.decision is not None:
        try:
            result = spec.decision.evaluate(t["data"])
        except FlowlaneError as exc:
            run._fail(n.id, f"decision {spec.decision.id}: {exc}")
        if spec.result_variable:
            t["data"][spec.result_variable] = copy.deepcopy(result)
        else:
            for name, value in result.items():
                _put(t["data"], name, copy.deepcopy(value))
    run._pass(t)


HANDLERS: dict[str, Any] = {"businessRuleTask": business_rule}
"""Node kinds this module runs (merged into the interpreter's handler table)."""
