"""Planning ``flowlane instance migrate``: move waiting instances to another process version.

Pure: no store, no clock. :func:`plan_migration` returns the migrated copy of one instance or
raises :class:`Refused` naming the instance, the block and why the move would strand a token;
:func:`plan_many` plans a batch and collects the refusals, so callers apply all or nothing.
Tokens keep their waits (timer, task and child ids), answers, vars and counters: only
``version``, the blocks and the ``came_from`` a join matches on are renamed per ``mapping``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flowlane.core.errors import Refused
from flowlane.engine.state import InstanceState, Token
from flowlane.model import process as m
from flowlane.model.definition import Definition
from flowlane.model.process import exits_of

_WAITS = {
    "task": "a task",
    "timer": "a timer",
    "cond": "a condition",
    "child": "a child instance",
    "children": "child instances",
    "join": "other branches",
}


def _kinds(block: Any) -> set[str]:
    """The wait kinds a token may hold at this block (see ``blocks.py``)."""
    if isinstance(block, m.DelayBlock):
        return {"timer", "task"} if block.ask is not None else {"timer"}
    if isinstance(block, m.TaskBlock | m.MessageBlock):
        waits = block.wait if isinstance(block, m.TaskBlock) else block.confirm
        return {"task"} if waits else set()
    if isinstance(block, m.ForEachBlock):
        return {"children"} if block.wait == "all" else set()
    kinds = {"question": "task", "call": "task", "wait_for": "cond"}
    kinds |= {"subprocess": "child", "join": "join"}
    return {kinds[block.type]} if block.type in kinds else set()


def _routes(block: m.SubprocessBlock) -> set[str] | None:
    """The child results this block routes; None for "any result" (no ``exits``)."""
    return set(block.exits) if block.exits else None


def _fit(src: Any, dst: Any, wait: dict[str, Any]) -> str | None:
    """Why a token waiting with ``wait`` at ``src`` cannot wait at ``dst``, else None."""
    kind = wait.get("k")
    if kind not in _kinds(dst):
        return f"it waits for {_WAITS.get(str(kind), kind)}, which this {dst.type} does not"
    if isinstance(src, m.QuestionBlock | m.CallBlock):
        assert isinstance(dst, m.QuestionBlock | m.CallBlock)
        lost = sorted(set(src.options) - set(dst.options))
        if lost:
            return f"its task may be answered with {', '.join(lost)}, which it has no option for"
    if isinstance(dst, m.WaitForBlock) and wait.get("timer") and not dst.timeout:
        return "its timeout timer is running and it has no timeout"
    if isinstance(src, m.SubprocessBlock | m.ForEachBlock):
        assert isinstance(dst, m.SubprocessBlock | m.ForEachBlock)
        if src.process != dst.process:
            return f"its children run process {src.process} and it starts {dst.process}"
    if isinstance(src, m.SubprocessBlock) and isinstance(dst, m.SubprocessBlock):
        before, after = _routes(src), _routes(dst)
        if after is not None and (before is None or before - after):
            lost_text = "any result" if before is None else ", ".join(sorted(before - after))
            return f"it has no exit for the child's result ({lost_text})"
    return None


def _reachable(target: Definition, starts: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(starts)
    while todo:
        bid = todo.pop()
        block = target.spec.blocks.get(bid)
        if bid in seen or block is None:
            continue
        seen.add(bid)
        todo.extend(t for _label, t in exits_of(block) if t is not None)
    return seen


def _check_joins(who: str, tokens: list[Token], target: Definition) -> None:
    """Tokens waiting at a join need the target's incoming branches still to arrive."""
    joins = sorted({t.block for t in tokens if t.wait and t.wait.get("k") == "join"})
    for join in joins:
        incoming = set(target.incoming.get(join, ()))
        arrived = {t.came_from for t in tokens if t.block == join}
        where = f"{who}: would strand the tokens at join {join}"
        for came in sorted(str(c) for c in arrived - incoming):
            raise Refused(f"{where}: {came} does not lead to {join} in version {target.version}")
        if incoming <= arrived:
            raise Refused(f"{where}: all its branches have arrived, none would release it")
        others = _reachable(target, [t.block for t in tokens if t.block != join])
        for missing in sorted(incoming - arrived - others):
            raise Refused(f"{where}: no token can still arrive from {missing}")


def _check_request(
    who: str,
    state: InstanceState,
    source: Definition,
    target: Definition,
    mapping: Mapping[str, str],
) -> None:
    if state.status != "running":
        raise Refused(f"{who} is {state.status}, not running: only waiting instances migrate")
    if target.key != state.process or source.key != state.process:
        other = target.key if target.key != state.process else source.key
        raise Refused(f"{who} runs process {state.process}, not {other}")
    if source.version != state.version:
        raise Refused(f"{who} is at version {state.version}, not at version {source.version}")
    if target.version == state.version:
        raise Refused(f"{who} is already at version {target.version}")
    if source.bpmn is not None or target.bpmn is not None or state.bpmn is not None:
        raise Refused(f"{who}: instances of standard BPMN processes do not migrate (yet)")
    for key, value in sorted(mapping.items()):
        for name, defn in ((key, source), (value, target)):
            if name not in defn.spec.blocks:
                raise Refused(
                    f"{who}: mapping {key}={value}: no block {name} in version {defn.version}"
                )


def _move(
    who: str, tok: Token, source: Definition, target: Definition, mapping: Mapping[str, str]
) -> None:
    old = tok.block
    if tok.wait is None:
        raise Refused(f"{who}: the token at block {old} is not waiting (not at rest)")
    src = source.spec.blocks.get(old)
    if src is None:
        raise Refused(
            f"{who}: the token at block {old}: no block {old} in version {source.version}"
        )
    block = mapping.get(old, old)
    dst = target.spec.blocks.get(block)
    if dst is None:
        raise Refused(
            f"{who}: would strand a token at block {old}: no block {old} in version "
            f"{target.version}; map it with {old}=<block>"
        )
    move = f"{who}: cannot move the token at block {old} to block {block} of version"
    move = f"{move} {target.version}"
    if dst.type != src.type:
        raise Refused(f"{move}: a waiting {src.type} cannot become a {dst.type}")
    reason = _fit(src, dst, tok.wait)
    if reason is not None:
        raise Refused(f"{move}: {reason}")
    tok.block = block
    if tok.came_from is not None:
        tok.came_from = mapping.get(tok.came_from, tok.came_from)


def plan_migration(
    state: InstanceState, source: Definition, target: Definition, mapping: Mapping[str, str]
) -> InstanceState:
    """The copy of a waiting ``state`` moved to ``target``; :class:`Refused` if it cannot be.

    ``mapping`` renames source blocks to target blocks; a block it does not name keeps its id.
    Counters the target declares and the instance lacks start at 0, as at a start.
    """
    who = f"instance {state.id}"
    _check_request(who, state, source, target, mapping)
    new = copy.deepcopy(state)
    new.version = target.version
    for tok in new.tokens:
        _move(who, tok, source, target, mapping)
    _check_joins(who, new.tokens, target)
    for name in target.spec.counters:
        new.counters.setdefault(name, 0)
    return new


def plan_many(
    states: Iterable[InstanceState],
    source_by_version: Callable[[int], Definition],
    target: Definition,
    mapping: Mapping[str, str],
) -> tuple[list[InstanceState], list[str]]:
    """Plan every state; returns the planned states and the refusal messages (apply all or
    nothing: a non-empty second list means the migration as a whole is refused)."""
    planned: list[InstanceState] = []
    refusals: list[str] = []
    for state in states:
        try:
            source = source_by_version(state.version)
            planned.append(plan_migration(state, source, target, mapping))
        except Refused as exc:
            refusals.append(exc.message)
        except LookupError:
            refusals.append(
                f"instance {state.id}: version {state.version} of {state.process} is not deployed"
            )
    return planned, refusals
