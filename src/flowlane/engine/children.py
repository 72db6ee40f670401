"""``subprocess`` and ``for_each``: starting child instances and resuming when they end."""

from __future__ import annotations

from typing import Any

from flowlane.core.errors import FlowlaneError
from flowlane.engine.context import object_id_of
from flowlane.engine.events import ChildEnded, StartChild
from flowlane.engine.state import Token
from flowlane.engine.step import WAIT, Incident, Step
from flowlane.expr import compile_expression
from flowlane.model import process as m
from flowlane.objects import coerce_value, field_from_dict


def _child_vars(step: Step, raw: dict[str, Any], token: Token) -> dict[str, Any]:
    values = step.value(raw, token)
    return {k: object_id_of(v) if hasattr(v, "flowlane_get") else v for k, v in values.items()}


def _start_child(
    step: Step, process: str, object_id: str | None, vars_: dict[str, Any], token: Token
) -> str:
    child = step.world.definition(process)
    if child is None:
        raise Incident(f"process {process!r} is not deployed")
    vars_ = dict(vars_)
    for name, raw in vars_.items():
        spec = child.spec.variables.get(name)
        if spec is not None and raw is not None:
            try:
                vars_[name] = coerce_value(
                    field_from_dict(name, spec), raw, schema=step.world.schema, tz=step.world.tz
                )
            except FlowlaneError as exc:
                raise Incident(f"{process}: variable {exc}") from exc
    child_id = step.state.next_id("c")
    settings_from = (
        step.state.process
        if step.defn.spec.task is not None
        else ((step.state.parent or {}).get("settings") or step.state.process)
    )
    step.state.children.append(child_id)
    step.emit(
        StartChild(child_id, process, object_id, vars_, step.state.id, token.id, settings_from)
    )
    step.log(token.block, "child_started", child=child_id, process=process, object=object_id)
    return child_id


def subprocess(step: Step, block: m.SubprocessBlock, token: Token) -> object:
    vars_ = _child_vars(step, block.vars, token)
    child = _start_child(step, block.process, step.state.object_id, vars_, token)
    token.wait = {"k": "child", "child": child}
    return WAIT


def resume_child(step: Step, token: Token, event: ChildEnded) -> None:
    block = step.defn.spec.blocks[token.block]
    w = token.wait or {}
    if isinstance(block, m.ForEachBlock):
        pending = [c for c in w.get("children", []) if c != event.child_id]
        token.wait = {"k": "children", "children": pending}
        if not pending:
            step.log(token.block, "children_done")
            step.move(token, block.next)
        return
    assert isinstance(block, m.SubprocessBlock)
    step.log(
        token.block, "child_ended", child=event.child_id, result=event.result, outcome=event.outcome
    )
    if event.result is not None and event.result in block.exits:
        step.move(token, block.exits[event.result])
    elif event.result is not None and not block.exits:
        step.move(token, block.next)
    else:
        step.log(token.block, "branch_ended", reason="child ended without a matching result")
        step.drop(token)


def for_each(step: Step, block: m.ForEachBlock, token: Token) -> object:
    where = compile_expression(block.query.where) if block.query.where else None
    base = step.scope(token)

    def scope_for(object_id: str) -> dict[str, Any]:
        return {**base, "object": step.overlay.proxy(object_id)}

    ids = step.world.find_objects(block.query.type, where, scope_for)
    vars_ = _child_vars(step, block.vars, token)
    children = [_start_child(step, block.process, oid, dict(vars_), token) for oid in ids]
    if block.wait == "all" and children:
        token.wait = {"k": "children", "children": children}
        return WAIT
    step.move(token, block.next)
    return None
